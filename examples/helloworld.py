"""The hello-world experiment: two words said in parallel, then joined.

Run it with ``python examples/helloworld.py``: it prints ``HELLO WORLD`` and where that
output is kept. Run it again and nothing executes (the result is read from the work
directory).
"""

from partita import Param, Task, experiment


class Say(Task, id="helloworld.say"):
    """Prints a word in capitals."""

    word: Param[str]

    def execute(self) -> None:
        print(self.word.upper())


class Concat(Task, id="helloworld.concat"):
    strings: Param[list[Say]]

    def execute(self) -> None:
        print(" ".join(s.stdout().read_text().strip() for s in self.strings))


with experiment("workdir", "helloworld") as xp:
    hello = Say(word="hello").submit()
    world = Say(word="world").submit()
    joined = Concat(strings=[hello, world]).tag("y", 1).submit()

if not xp.dry_run:
    print(joined.stdout().read_text().strip())
    print(f"(the output of the last job, kept in {joined.stdout()})")
