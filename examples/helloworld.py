"""The hello-world experiment: two words said in parallel, then joined.

Run it with ``python examples/helloworld.py``; run it again and nothing executes.
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
    Concat(strings=[hello, world]).tag("y", 1).submit()
