/* Every page: small behaviour of the page frame (base.html). */
(function () {
  "use strict";

  // Signing out forgets this person's unsaved drafts kept by static/js/authoring.js on this browser.
  document.querySelectorAll("form[data-sign-out]").forEach(function (form) {
    form.addEventListener("submit", function () {
      try {
        const prefix = "hindsight:" + form.dataset.signOut + ":";
        Object.keys(localStorage)
          .filter(function (key) { return key.startsWith(prefix); })
          .forEach(function (key) { localStorage.removeItem(key); });
      } catch (error) {
        /* no storage: nothing kept */
      }
    });
  });

  // A table wider than the screen scrolls sideways in its .table-wrap: make that region reachable and
  // scrollable by keyboard, and name it after its section's heading.
  function reachableScroll() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        const section = wrap.closest("section");
        const heading = section && section.querySelector("h1, h2, h3");
        wrap.tabIndex = 0;
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", heading ? heading.textContent.trim() + " (table)" : "Table");
      } else if (wrap.getAttribute("role") === "region") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }
  reachableScroll();
  window.addEventListener("resize", reachableScroll);
})();
