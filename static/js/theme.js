/* Dark mode follows the system setting: Bootstrap switches its colours on <html data-bs-theme>.
 * Loaded in <head>, before the page is drawn, so a dark page never flashes white. */
(function () {
  "use strict";
  const query = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function apply() {
    document.documentElement.setAttribute("data-bs-theme", query && query.matches ? "dark" : "light");
  }
  apply();
  document.documentElement.classList.add("js"); // styles for what only works with scripts
  if (query && query.addEventListener) query.addEventListener("change", apply);
})();
