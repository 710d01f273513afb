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

  // One autosave post, the text fields' or the rows': the saved step's JSON, or null when it was not saved,
  // having said why (and told the caller of a conflict or a lost session). Offline, it throws.
  async function autosave(data, what, { onConflict, onSignedOut = () => {} }) {
    const response = await fetch(saveUrl, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "XMLHttpRequest" },
    });
    if (response.redirected) {
      onSignedOut();
      show("Not saved — you were signed out. Your " + what + " kept in this browser; sign in again.", "error");
      return null;
    }
    if (response.status === 409) {
      onConflict();
      show("Not saved — someone else changed this step. Press “Save draft” to compare both versions.", "error");
      return null;
    }
    if (response.status === 400) {
      const body = await response.json();
      show("Not saved — " + body.errors.join(" "), "error");
      return null;
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    const body = await response.json();
    revisionInput.value = String(body.revision);
    return body;
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
      activate(row);
      markRowsDirty();
      focusFirst(row);
    } else if (why) {
      const row = newRow("factors");
      if (!row) return;
      event.preventDefault();
      const parentRow = why.closest("[data-row]");
      const select = row.querySelector('select[name$="-parent"]');
      if (select) select.value = why.dataset.why;
      const after = subtreeOf(parentRow);
      (after.length ? after[after.length - 1] : parentRow).after(row);
      setDepth(row, depthOf(parentRow) + 1);
      activate(row);
      markRowsDirty();
      focusFirst(row);
    }
  });

  // --- the "why?" tree: rows carry data-depth; a row's answers are the deeper rows right after it ----

  function depthOf(row) {
    return Number(row.dataset.depth || 0);
  }

  function setDepth(row, depth) {
    row.dataset.depth = String(depth);
    const label = row.querySelector(".why-label > span");
    if (label) label.hidden = depth === 0;
  }

  function subtreeOf(row) {
    if (!row.closest("[data-tree]")) return [];
    const members = [];
    let next = row.nextElementSibling;
    while (next && next.matches("[data-row]") && depthOf(next) > depthOf(row)) {
      members.push(next);
      next = next.nextElementSibling;
    }
    return members;
  }

  function treeStatus(text) {
    const status = form.querySelector("[data-tree-status]");
    if (status) status.textContent = text;
  }

  function moveTree(row, direction) {
    const select = row.querySelector('select[name$="-parent"]');
    const members = subtreeOf(row);
    const depth = depthOf(row);
    if (direction > 0) {
      let above = row.previousElementSibling;
      while (above && (above.hidden || depthOf(above) > depth)) above = above.previousElementSibling;
      if (!above || depthOf(above) !== depth) return treeStatus("Nothing above at this level to answer.");
      if (!above.dataset.factor) return treeStatus("Save first: the factor above is new, so nothing can answer it yet.");
      select.value = above.dataset.factor;
    } else {
      if (depth === 0) return treeStatus("It is a starting factor already.");
      let parentRow = row.previousElementSibling;
      while (parentRow && depthOf(parentRow) >= depth) parentRow = parentRow.previousElementSibling;
      const grandparent = parentRow && parentRow.querySelector('select[name$="-parent"]');
      select.value = grandparent ? grandparent.value : "";
      const rest = parentRow ? subtreeOf(parentRow) : [];
      const end = rest.length ? rest[rest.length - 1] : parentRow;
      if (end && end !== row && !members.includes(end)) {
        end.after(row);
        let at = row;
        members.forEach(function (member) {
          at.after(member);
          at = member;
        });
      }
    }
    [row].concat(members).forEach((member) => setDepth(member, depthOf(member) + direction));
    treeStatus(direction > 0 ? "Indented: it now answers “why?” for the factor above." : "Outdented one level.");
    markRowsDirty();
    row.querySelector(direction > 0 ? "[data-indent]" : "[data-outdent]").focus();
  }

  form.addEventListener("click", function (event) {
    const indent = event.target.closest("[data-indent]");
    const outdent = event.target.closest("[data-outdent]");
    if (indent || outdent) {
      event.preventDefault();
      moveTree((indent || outdent).closest("[data-row]"), indent ? 1 : -1);
    }
  });

  // A "why?" under a factor typed in the page saves it first (the server answers with its new row).
  form.addEventListener("click", function (event) {
    if (event.target.closest("[data-why-new]")) forgetRows();
  });

  form.addEventListener("change", function (event) {
    if (event.target.name && event.target.name.endsWith("-DELETE")) {
      event.target.closest("[data-row]").classList.toggle("row-removed", event.target.checked);
    }
  });

  document.querySelectorAll(".js-only[hidden]").forEach((el) => (el.hidden = false));

  // Remove a row at once; "Undo" brings it back until the step is saved (its Remove box is what saves).
  const undoBar = document.querySelector("[data-undo-bar]");
  const removed = [];

  function showUndo() {
    if (!undoBar) return;
    undoBar.hidden = removed.length === 0;
    const what = removed.length === 1 ? "1 row removed" : removed.length + " rows removed";
    undoBar.querySelector("[data-undo-text]").textContent = what + "; it goes when you save.";
  }

  function rowsOf(row) {
    return Array.from(row.parentElement.querySelectorAll(":scope > [data-row]:not([hidden])"));
  }

  form.addEventListener("click", function (event) {
    const remove = event.target.closest("[data-remove-row]");
    if (remove) {
      const row = remove.closest("[data-row]");
      const group = [row].concat(typeof subtreeOf === "function" ? subtreeOf(row) : []);
      const visible = rowsOf(row);
      const next = visible[visible.indexOf(group[group.length - 1]) + 1] || visible[visible.indexOf(row) - 1];
      group.forEach(function (member) {
        const box = member.querySelector('input[name$="-DELETE"]');
        if (box) box.checked = true;
        member.hidden = true;
      });
      removed.push(group);
      showUndo();
      markRowsDirty();
      if (next) focusFirst(next);
      else if (undoBar) undoBar.querySelector("[data-undo]").focus();
      return;
    }
    if (event.target.closest("[data-undo]")) {
      const group = removed.pop();
      if (!group) return;
      group.forEach(function (member) {
        const box = member.querySelector('input[name$="-DELETE"]');
        if (box) box.checked = false;
        member.hidden = false;
      });
      showUndo();
      markRowsDirty();
      focusFirst(group[0]);
    }
  });
  document.querySelectorAll("[data-remove-row]").forEach((button) => (button.hidden = false));
  // Rows whose Remove box came back checked (a redisplayed form) stay out of sight, undoable.
  document.querySelectorAll('[data-row] input[name$="-DELETE"]:checked').forEach(function (box) {
    const row = box.closest("[data-row]");
    row.hidden = true;
    removed.push([row]);
  });
  showUndo();

  // The timeline: Enter in a row adds one below it, at the same time and zone, and focuses it.
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
    const field = event.target;
    const row = field.closest("[data-row]");
    const container = row && row.closest("[data-enter-adds-row]");
    if (!container || field.matches("button, [type=checkbox], [role=combobox][aria-expanded=true]")) return;
    event.preventDefault();
    const added = newRow(container.dataset.rows);
    if (!added) return;
    copyTime(row, added);
    row.after(added);
    activate(added);
    focusFirst(added);
  });

  function copyTime(from, to) {
    ["occurred_at", "zone"].forEach(function (name) {
      const source = from.querySelector('[name$="-' + name + '"]');
      const target = to.querySelector('[name$="-' + name + '"]');
      if (source && target && source.value) target.value = source.value;
    });
  }

  function activate(row) {
    row.querySelectorAll("[data-remove-row]").forEach((button) => (button.hidden = false));
  }

  // "Paste several lines": lines that start with a time become rows; other lines continue the one above.
  const TIME_LINE =
    /^\s*(?:(\d{4}-\d{2}-\d{2})[ T]+)?(\d{1,2}):(\d{2})(?::\d{2})?\s*(Z|UTC|[A-Za-z]+\/[A-Za-z_\/+-]+)?\s*[-–—:|]?\s*(.*)$/;

  function parseLines(text, defaultDate) {
    const events = [];
    let date = defaultDate;
    text.split(/\r?\n/).forEach(function (line) {
      const match = TIME_LINE.exec(line);
      if (match) {
        date = match[1] || date;
        const time = match[2].padStart(2, "0") + ":" + match[3];
        const zone = match[4] === "Z" ? "UTC" : match[4] || "";
        events.push({ when: date + "T" + time, zone: zone, text: match[5].trim() });
      } else if (line.trim() && events.length) {
        const last = events[events.length - 1];
        last.text = (last.text + " " + line.trim()).trim();
      }
    });
    return events;
  }

  function isBlank(row) {
    const when = row.querySelector('[name$="-occurred_at"]');
    const what = row.querySelector('[name$="-description"]');
    return when && what && !when.value && !what.value.trim() && !row.querySelector('[name$="-id"][value]:not([value=""])');
  }

  document.querySelectorAll("[data-paste-lines]").forEach(function (panel) {
    const prefix = panel.dataset.pasteLines;
    const input = panel.querySelector("textarea");
    const result = panel.querySelector("[data-paste-result]");
    panel.querySelector("[data-paste-apply]").addEventListener("click", function () {
      const events = parseLines(input.value, input.dataset.incidentDate);
      if (!events.length) {
        result.textContent = "No line starts with a time like 09:12.";
        return;
      }
      const container = form.querySelector('[data-rows="' + prefix + '"]');
      let first = null;
      events.forEach(function (event) {
        let row = Array.from(container.querySelectorAll(":scope > [data-row]:not([hidden])")).find(isBlank);
        if (!row) {
          row = newRow(prefix);
          if (!row) return;
          container.appendChild(row);
          activate(row);
        }
        row.querySelector('[name$="-occurred_at"]').value = event.when;
        if (event.zone) row.querySelector('[name$="-zone"]').value = event.zone;
        row.querySelector('[name$="-description"]').value = event.text;
        first = first || row;
      });
      result.textContent = events.length + (events.length === 1 ? " event added" : " events added") + "; check them, then save.";
      input.value = "";
      markRowsDirty();
      if (first) focusFirst(first);
    });
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

  // --- rows steps: a local copy of what was typed, until it is saved ---------------------------------
  // Rows are saved with the step's buttons; until then this browser keeps a copy (rows added, removed,
  // moved in the tree, and their text), restored when the page is opened again, and the page warns
  // before it is left with changes that are not saved.

  const rowsStep = !form.hasAttribute("data-autosave-form") && form.querySelector("[data-rows]");
  const rowsKey = storageKey + ":rows";
  let rowsDirty = false;
  let leaving = false;

  function rowIndex(row) {
    const named = row.querySelector("[name]");
    const match = named && /-(\d+)-/.exec(named.name);
    return match ? Number(match[1]) : -1;
  }

  function fieldState(el) {
    if (el.type === "checkbox" || el.type === "radio") return el.checked;
    if (el.multiple) return Array.from(el.selectedOptions).map((option) => option.value);
    return el.value;
  }

  function snapshotRows() {
    const container = form.querySelector("[data-rows]");
    const values = {};
    Array.from(form.elements).forEach(function (el) {
      if (!el.name || el.type === "submit" || el.type === "button" || el.name === "csrfmiddlewaretoken") return;
      if (el.name === "expected_revision" || !el.closest("[data-row]")) return;
      values[el.name + (el.type === "checkbox" ? "=" + el.value : "")] = fieldState(el);
    });
    const rows = Array.from(container.querySelectorAll(":scope > [data-row]")).map(function (row) {
      const id = row.querySelector('input[name$="-id"]');
      return { index: rowIndex(row), id: id ? id.value : "", depth: depthOf(row), hidden: row.hidden };
    });
    return { revision: Number(revisionInput && revisionInput.value), values: values, rows: rows, at: Date.now() };
  }

  function markRowsDirty() {
    if (!rowsStep || leaving) return; // submitted: a late autosave answer must not bring the copy back
    rowsDirty = true;
    try {
      localStorage.setItem(rowsKey, JSON.stringify(snapshotRows()));
    } catch (error) {
      /* no storage: the warning before leaving still guards the text */
    }
  }

  function forgetRows() {
    leaving = true;
    try {
      localStorage.removeItem(rowsKey);
    } catch (error) {
      /* nothing kept */
    }
  }

  function restoreRows() {
    let kept = null;
    try {
      kept = JSON.parse(localStorage.getItem(rowsKey));
    } catch (error) {
      kept = null;
    }
    if (!kept || !kept.rows || !kept.values) return;
    const container = form.querySelector("[data-rows]");
    const prefix = container.dataset.rows;
    const current = Array.from(container.querySelectorAll(":scope > [data-row]"));
    const byId = {};
    current.forEach(function (row) {
      const id = row.querySelector('input[name$="-id"]');
      if (id && id.value) byId[id.value] = row;
    });
    // Saved rows are found by their id (the server may number and order them differently now); rows that
    // were not saved take the page's blank rows, then new ones.
    const blanks = current.filter((row) => !row.querySelector('input[name$="-id"]').value);
    const placed = new Map();
    kept.rows.forEach(function (state) {
      let row = state.id ? byId[state.id] : null;
      if (!row) row = blanks.shift() || null;
      if (!row) {
        row = newRow(prefix);
        if (!row) return;
        activate(row);
      }
      placed.set(state.index, row);
      container.appendChild(row); // in the kept order
      if (row.dataset.depth !== undefined) setDepth(row, state.depth);
      row.hidden = state.hidden;
      if (state.hidden) removed.push([row]);
    });
    const named = /^(.*?-)(\d+)(-.*)$/;
    Object.entries(kept.values).forEach(function ([key, value]) {
      const match = named.exec(key);
      const row = match && placed.get(Number(match[2]));
      if (!row) return;
      const [name, checkValue] = match[3].split("=");
      const field = name.endsWith("-id")
        ? null
        : row.querySelector('[name$="' + name + '"]' + (checkValue !== undefined ? '[value="' + checkValue + '"]' : "")) ||
          (checkValue === "on" ? row.querySelector('[name$="' + name + '"]') : null); // a box with no value
      if (!field) return;
      if (field.type === "checkbox" || field.type === "radio") field.checked = value;
      else if (field.multiple) Array.from(field.options).forEach((option) => (option.selected = value.includes(option.value)));
      else field.value = value;
    });
    showUndo();
    // Saved against the revision it was typed on, so that a save by someone else meanwhile is a conflict.
    if (revisionInput && kept.revision && kept.revision < Number(revisionInput.value)) {
      revisionInput.value = String(kept.revision);
    }
    rowsDirty = true;
    show("Restored rows you typed in this browser that had not been saved yet. Save to keep them.", "restored");
  }

  if (rowsStep) {
    // A conflict or a refused save shows the posted rows again: keep them, do not restore older ones.
    if (form.hasAttribute("data-conflict") || form.querySelector(".is-invalid, .tl-errors, .alert-danger")) {
      markRowsDirty();
    } else {
      restoreRows();
    }
    leaving = false;
    form.addEventListener("input", markRowsDirty);
    form.addEventListener("change", markRowsDirty);
    form.addEventListener("submit", forgetRows);
    window.addEventListener("beforeunload", function (event) {
      if (rowsDirty && !leaving) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  // --- rows steps: autosave --------------------------------------------------------------------------
  // Complete rows are saved a moment after typing stops. A row removed in the page is only removed by the
  // step's own buttons (so Undo stays possible), and a new row waits until its needed fields are filled.
  // The server answers with the ids of the rows it created; the page then numbers saved rows first, as
  // Django's formset expects, so that the next autosave edits them instead of adding them again.

  if (rowsStep && revisionInput) {
    const container = form.querySelector("[data-rows]");
    const prefix = container.dataset.rows;
    const needs = (container.dataset.rowNeeds || "").split(" ").filter(Boolean);
    const ROWS_DEBOUNCE_MS = 1500;
    let rowsTimer = null;
    let rowsInflight = false;
    let rowsStopped = false;
    let edits = 0;
    let rowsRetryMs = 2000;

    const idOf = (row) => row.querySelector('input[name$="-id"]');
    const isSaved = (row) => Boolean(idOf(row) && idOf(row).value);
    const incomplete = (row) =>
      needs.some(function (name) {
        const field = row.querySelector('[name$="-' + name + '"]');
        return field && !field.value.trim();
      });

    function rowsPayload() {
      const data = new FormData(form);
      data.delete("_save");
      data.set("_autosave", "1");
      container.querySelectorAll(":scope > [data-row]").forEach(function (row) {
        const remove = row.querySelector('input[name$="-DELETE"]');
        if (!remove) return;
        if (isSaved(row) && row.hidden) data.delete(remove.name);
        else if (!isSaved(row) && (row.hidden || incomplete(row))) data.set(remove.name, "on");
      });
      return data;
    }

    function renumber() {
      const rows = Array.from(container.querySelectorAll(":scope > [data-row]"));
      const saved = rows.filter(isSaved);
      const order = saved.concat(rows.filter((row) => !isSaved(row)));
      const pattern = new RegExp("(^|[\\s_])" + prefix + "-\\d+-", "g");
      order.forEach(function (row, index) {
        row.querySelectorAll("*").forEach(function (el) {
          ["name", "id", "for", "aria-describedby"].forEach(function (attribute) {
            const value = el.getAttribute(attribute);
            if (value && value.includes(prefix + "-")) {
              el.setAttribute(attribute, value.replace(pattern, "$1" + prefix + "-" + index + "-"));
            }
          });
          if (el.matches('button[value^="why-row-"]')) el.value = "why-row-" + index;
        });
      });
      form.querySelector("#id_" + prefix + "-INITIAL_FORMS").value = String(saved.length);
    }

    async function saveRows() {
      if (rowsStopped || !rowsDirty) return;
      if (rowsInflight) {
        scheduleRows(500);
        return;
      }
      rowsInflight = true;
      const sentAt = edits;
      show("Saving…", "saving");
      try {
        const body = await autosave(rowsPayload(), "rows are", { onConflict: () => (rowsStopped = true) });
        if (!body) return;
        Object.entries(body.rows || {}).forEach(function ([rowPrefix, pk]) {
          const input = form.querySelector('[name="' + rowPrefix + '-id"]');
          if (!input) return;
          input.value = String(pk);
          const row = input.closest("[data-row]");
          if (row.closest("[data-tree]")) row.dataset.factor = String(pk);
        });
        renumber();
        rowsRetryMs = 2000;
        const pendingRemoval = Array.from(container.querySelectorAll(":scope > [data-row]")).some(
          (row) => row.hidden && isSaved(row)
        );
        if (edits === sentAt && !pendingRemoval) {
          rowsDirty = false;
          try {
            localStorage.removeItem(rowsKey);
          } catch (error) {
            /* nothing kept */
          }
        } else {
          markRowsDirty();
        }
        show("Saved " + body.saved_at, "saved");
      } catch (error) {
        show("Not saved — offline. Your rows are kept in this browser. Retrying…", "error");
        scheduleRows(rowsRetryMs);
        rowsRetryMs = Math.min(rowsRetryMs * 2, 30000);
      } finally {
        rowsInflight = false;
      }
    }

    function scheduleRows(delay) {
      clearTimeout(rowsTimer);
      rowsTimer = setTimeout(saveRows, delay);
    }

    function rowsChanged() {
      edits += 1;
      if (!rowsStopped && !form.hasAttribute("data-conflict")) scheduleRows(ROWS_DEBOUNCE_MS);
    }
    form.addEventListener("input", rowsChanged);
    form.addEventListener("change", rowsChanged);
    form.addEventListener("click", function (event) {
      if (event.target.closest("[data-remove-row], [data-undo], [data-indent], [data-outdent], [data-paste-apply]")) {
        rowsChanged();
      }
    });
    form.addEventListener("submit", function () {
      clearTimeout(rowsTimer);
      rowsStopped = true;
    });
    window.addEventListener("online", function () {
      if (rowsDirty) scheduleRows(0);
    });
    if (rowsDirty) scheduleRows(300); // rows restored from this browser
  }

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
      const body = await autosave(payload(), "text is", {
        onConflict: () => (stopped = true),
        onSignedOut: () => (dirty = true),
      });
      if (!body) return;
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
