/* Hindsight authoring: autosave with a local backup, inline add/remove rows, tag suggestions.
 * Every form works without this file; it only saves typing and round trips. No build step. */
(function () {
  "use strict";

  const form = document.getElementById("step-form");
  if (!form) return;

  const statusEl = form.querySelector("[data-autosave-status]");
  const revisionInput = form.querySelector('[name="expected_revision"]');
  const storageKey = form.dataset.storageKey;
  const saveUrl = form.getAttribute("action") || window.location.pathname + window.location.search;

  function show(text, tone) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.dataset.state = tone;
  }

  // --- inline rows -------------------------------------------------------------------------------

  function newRow(prefix) {
    const template = document.querySelector('template[data-empty-row="' + prefix + '"]');
    const total = form.querySelector("#id_" + prefix + "-TOTAL_FORMS");
    if (!template || !total) return null;
    const index = Number(total.value);
    const holder = document.createElement("div");
    holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index)).trim();
    total.value = String(index + 1);
    return holder.firstElementChild;
  }

  function focusFirst(row) {
    const field = row.querySelector("textarea, input:not([type=hidden]):not([type=checkbox]), select");
    if (field) field.focus();
  }

  form.addEventListener("click", function (event) {
    const add = event.target.closest("[data-add-row]");
    const why = event.target.closest("[data-why]");
    if (add) {
      const row = newRow(add.dataset.addRow);
      if (!row) return;
      event.preventDefault();
      form.querySelector('[data-rows="' + add.dataset.addRow + '"]').appendChild(row);
      focusFirst(row);
    } else if (why) {
      const row = newRow("factors");
      if (!row) return;
      event.preventDefault();
      const parentRow = why.closest("[data-row]");
      // Depth is a class (depth-0 … depth-8), never a style attribute: the page's CSP refuses those.
      const depth = Math.min(Number(getComputedStyle(parentRow).getPropertyValue("--depth") || 0) + 1, 8);
      row.classList.remove(...Array.from(row.classList).filter((name) => name.startsWith("depth-")));
      row.classList.add("depth-" + depth);
      const label = document.createElement("div");
      label.className = "why-label";
      label.textContent = "why? — answers “" + (parentRow.querySelector("textarea").value.slice(0, 60)) + "”";
      row.prepend(label);
      const select = row.querySelector('select[name$="-parent"]');
      if (select) select.value = why.dataset.why;
      parentRow.after(row);
      focusFirst(row);
    }
  });

  form.addEventListener("change", function (event) {
    if (event.target.name && event.target.name.endsWith("-DELETE")) {
      event.target.closest("[data-row]").classList.toggle("row-removed", event.target.checked);
    }
  });

  // --- tag suggestions ---------------------------------------------------------------------------

  const tagInput = form.querySelector("[data-tag-input]");
  const tagList = document.getElementById("tag-suggestions");
  if (tagInput && tagList) {
    let tagTimer = null;
    let lastAsked = null;
    tagInput.addEventListener("input", function () {
      clearTimeout(tagTimer);
      tagTimer = setTimeout(async function () {
        const parts = tagInput.value.split(",");
        const current = parts.pop().trim();
        const chosen = parts.map((part) => part.trim()).filter(Boolean);
        if (!current || current === lastAsked) return;
        lastAsked = current;
        try {
          const response = await fetch(tagList.dataset.tagUrl + "?q=" + encodeURIComponent(current), {
            credentials: "same-origin",
          });
          const body = await response.json();
          tagList.replaceChildren(
            ...body.tags
              .filter((name) => !chosen.includes(name))
              .map(function (name) {
                const option = document.createElement("option");
                option.value = chosen.concat([name]).join(", ");
                option.label = name;
                return option;
              })
          );
        } catch (error) {
          /* Suggestions are a convenience; typing works without them. */
        }
      }, 200);
    });
  }

  // --- image upload errors (markdownx inserts "Invalid response"; say what was wrong instead) --------

  document.querySelectorAll(".markdownx").forEach(function (box) {
    box.addEventListener("markdownx.fileUploadError", function (event) {
      const editor = box.querySelector("textarea");
      const detail = event.detail && event.detail[0];
      const message = (detail && detail.error) || "The image could not be uploaded.";
      setTimeout(function () {
        editor.value = editor.value.replace("Invalid response", "");
      }, 0);
      let note = box.parentElement.querySelector(".upload-error");
      if (!note) {
        note = document.createElement("div");
        note.className = "upload-error invalid-feedback d-block";
        note.setAttribute("role", "alert");
        box.after(note);
      }
      note.textContent = message;
    });
    box.addEventListener("markdownx.fileUploadEnd", function () {
      const note = box.parentElement.querySelector(".upload-error");
      if (note) note.remove();
      markDirty();
    });
  });

  // --- autosave with a local backup ----------------------------------------------------------------

  if (!form.hasAttribute("data-autosave-form") || !revisionInput) return;

  const fields = Array.from(form.querySelectorAll("textarea[data-autosave]"));
  const DEBOUNCE_MS = 1200;
  let timer = null;
  let dirty = false;
  let inflight = false;
  let stopped = false;
  let retryMs = 2000;

  function keyFor(field) {
    return storageKey + ":" + field.name;
  }

  function backup(field) {
    try {
      localStorage.setItem(
        keyFor(field),
        JSON.stringify({ text: field.value, revision: Number(revisionInput.value), at: Date.now() })
      );
    } catch (error) {
      /* Private mode or a full quota: the server save still runs. */
    }
  }

  function forget(field) {
    try {
      localStorage.removeItem(keyFor(field));
    } catch (error) {
      /* nothing stored */
    }
  }

  function payload() {
    const data = new FormData(form);
    data.delete("_save");
    data.set("_autosave", "1");
    return data;
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(save, delay);
  }

  function markDirty() {
    dirty = true;
    if (!stopped) schedule(DEBOUNCE_MS);
  }

  async function save() {
    if (stopped || !dirty) return;
    if (inflight) {
      schedule(500);
      return;
    }
    inflight = true;
    dirty = false;
    const sent = {};
    fields.forEach((field) => (sent[field.name] = field.value));
    show("Saving…", "saving");
    try {
      const response = await fetch(saveUrl, {
        method: "POST",
        body: payload(),
        credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest" },
      });
      if (response.redirected) {
        dirty = true;
        show("Not saved — you were signed out. Your text is kept in this browser; sign in again.", "error");
        return;
      }
      if (response.status === 409) {
        stopped = true;
        show("Not saved — someone else changed this step. Press “Save draft” to compare both versions.", "error");
        return;
      }
      if (response.status === 400) {
        const body = await response.json();
        show("Not saved — " + body.errors.join(" "), "error");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const body = await response.json();
      revisionInput.value = String(body.revision);
      fields.forEach(function (field) {
        if (field.value === sent[field.name]) forget(field);
        else backup(field);
      });
      retryMs = 2000;
      show("Saved " + body.saved_at, "saved");
    } catch (error) {
      dirty = true;
      show("Not saved — offline. Retrying…", "error");
      schedule(retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    } finally {
      inflight = false;
    }
  }

  // What this browser kept from a tab that closed before it could save.
  if (!form.hasAttribute("data-conflict")) {
    let restored = false;
    fields.forEach(function (field) {
      let kept = null;
      try {
        kept = JSON.parse(localStorage.getItem(keyFor(field)));
      } catch (error) {
        kept = null;
      }
      if (!kept || typeof kept.text !== "string") return;
      if (kept.text === field.value) {
        forget(field);
        return;
      }
      field.value = kept.text;
      restored = true;
      // Save it against the revision it was written on, so that a newer save by someone else conflicts.
      if (kept.revision < Number(revisionInput.value)) revisionInput.value = String(kept.revision);
    });
    if (restored) {
      dirty = true;
      show("Restored text you typed in this browser that had not been saved yet.", "restored");
      schedule(300);
    }
  }

  form.addEventListener("input", function (event) {
    if (event.target.matches("textarea[data-autosave]")) backup(event.target);
    markDirty();
  });
  form.addEventListener("submit", function () {
    clearTimeout(timer);
    stopped = true;
    fields.forEach(forget);
  });
  window.addEventListener("online", function () {
    if (dirty) schedule(0);
  });
  window.addEventListener("pagehide", function () {
    if (dirty && !stopped && navigator.sendBeacon) navigator.sendBeacon(saveUrl, payload());
  });
})();
