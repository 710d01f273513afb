/* The people picker: a type-ahead over /postmortems/people.json for fields of usernames
 * (<input data-people-picker="one|many">). Without this file the field is plain text: type usernames.
 * An ARIA combobox: ↓/↑ move through the matches, Enter or a click picks one, Escape closes the list. */
(function () {
  "use strict";

  const holder = document.querySelector("[data-people-url]");
  if (!holder) return;
  const url = holder.dataset.peopleUrl;
  let counter = 0;

  function attach(input) {
    if (input.dataset.pickerReady) return;
    input.dataset.pickerReady = "1";
    const many = input.dataset.peoplePicker === "many";
    const id = "people-list-" + ++counter;
    const list = document.createElement("ul");
    list.id = id;
    list.className = "people-list list-unstyled";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Matching people");
    list.hidden = true;
    const wrap = document.createElement("div");
    wrap.className = "people-picker";
    input.parentNode.insertBefore(wrap, input);
    wrap.append(input, list);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", id);

    let people = [];
    let active = -1;
    let timer = null;
    let asked = null;

    function current() {
      return many ? input.value.split(",").pop().trim() : input.value.trim();
    }

    function close() {
      list.hidden = true;
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      const options = list.querySelectorAll("[role=option]");
      options.forEach(function (option, i) {
        option.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function render() {
      list.replaceChildren();
      const chosen = many ? input.value.split(",").slice(0, -1).map((part) => part.trim()) : [];
      people = people.filter((person) => !chosen.includes(person.username));
      people.forEach(function (person, i) {
        const option = document.createElement("li");
        option.id = id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        const name = document.createElement("span");
        name.className = "people-name";
        name.textContent = person.name;
        const detail = document.createElement("span");
        detail.className = "people-detail";
        detail.textContent = [person.username, person.email].concat(person.teams).filter(Boolean).join(" · ");
        option.append(name, detail);
        option.addEventListener("mousedown", function (event) {
          event.preventDefault(); // keep the focus in the field
          pick(i);
        });
        list.append(option);
      });
      if (!people.length) {
        const none = document.createElement("li");
        none.className = "people-none";
        none.textContent = "Nobody matches “" + current() + "”.";
        list.append(none);
      }
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      highlight(people.length ? 0 : -1);
    }

    function pick(index) {
      const person = people[index];
      if (!person) return;
      if (many) {
        const parts = input.value.split(",").slice(0, -1).map((part) => part.trim()).filter(Boolean);
        parts.push(person.username);
        input.value = parts.join(", ") + ", ";
      } else {
        input.value = person.username;
      }
      close();
      asked = null;
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    async function ask() {
      const text = current();
      if (!text) {
        close();
        return;
      }
      if (text === asked) return;
      asked = text;
      try {
        const response = await fetch(url + "?q=" + encodeURIComponent(text), { credentials: "same-origin" });
        if (!response.ok) return;
        const body = await response.json();
        if (text !== current()) return; // typed on meanwhile
        people = body.people;
        render();
      } catch (error) {
        /* Suggestions are a convenience; typing usernames works without them. */
      }
    }

    input.addEventListener("input", function (event) {
      if (!event.isTrusted) return;
      clearTimeout(timer);
      timer = setTimeout(ask, 150);
    });
    input.addEventListener("keydown", function (event) {
      const open = !list.hidden && people.length > 0;
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (list.hidden) {
          asked = null;
          ask();
        } else if (open) highlight((active + 1) % people.length);
      } else if (event.key === "ArrowUp" && open) {
        event.preventDefault();
        highlight((active - 1 + people.length) % people.length);
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault(); // pick, do not submit the form
        pick(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", function () {
      setTimeout(close, 100);
    });
  }

  document.querySelectorAll("[data-people-picker]").forEach(attach);
  // Rows added in the page (action items) get a picker when first focused.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-people-picker]")) attach(event.target);
  });
})();
