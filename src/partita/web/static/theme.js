// Applied before the page is drawn, so that a chosen theme does not flash.
(function () {
  try {
    var theme = localStorage.getItem("partita-theme");
    if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage may be disabled */ }
})();
