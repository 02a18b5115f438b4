// rater's page: the terminal's keys, the half-second rule, options that must have been seen, drafts kept as the
// teacher ticks, and a heartbeat that holds the item (and hears when the link is revoked). No framework.
"use strict";
(function () {
  const body = document.body;
  const form = document.getElementById("answer");
  const csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";
  const seq = Number(body.dataset.seq || -1);
  const aliveEvery = Number(body.dataset.alive || 30) * 1000;
  const dwell = 500;
  const loadedAt = performance.now();
  let visibleMs = 0, visibleSince = document.visibilityState === "visible" ? loadedAt : null;
  let submitting = false, closed = false, draftTimer = null;

  function say(key, fallback) { return body.dataset[key] || fallback; }

  function notice(text, kind) {
    const box = document.getElementById("notices");
    if (!box) return;
    const p = document.createElement("p");
    p.className = "notice " + (kind || "warning");
    p.textContent = text;
    box.replaceChildren(p);
  }

  document.addEventListener("visibilitychange", function () {
    const now = performance.now();
    if (document.visibilityState === "visible") { visibleSince = now; }
    else if (visibleSince !== null) { visibleMs += now - visibleSince; visibleSince = null; }
  });

  function secondsVisible() {
    return (visibleMs + (visibleSince !== null ? performance.now() - visibleSince : 0)) / 1000;
  }

  // options count as seen once at least half of each has been in view
  const options = Array.from(document.querySelectorAll(".option"));
  const seen = new Set();
  if ("IntersectionObserver" in window) {
    const watcher = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.intersectionRatio >= 0.5) seen.add(e.target); });
    }, { threshold: [0, 0.5, 1] });
    options.forEach(function (o) { watcher.observe(o); });
  } else {
    options.forEach(function (o) { seen.add(o); });
  }

  function marks() {
    const ticked = [], reasons = {};
    options.forEach(function (o) {
      const box = o.querySelector('input[type="checkbox"]');
      o.classList.toggle("ticked", box.checked);
      if (box.checked) { ticked.push(Number(box.value)); return; }
      const chosen = o.querySelector('input[type="radio"]:checked');
      if (chosen && chosen.value === "other") {
        const text = o.querySelector('input[type="text"]').value.trim();
        if (text) reasons[box.value] = text;
      } else if (chosen && chosen.value) { reasons[box.value] = chosen.value; }
    });
    return { seq: seq, ticked: ticked, reasons: reasons };
  }

  function post(path, data, keepalive) {
    return fetch(path, { method: "POST", credentials: "same-origin", keepalive: !!keepalive,
                         headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
                         body: JSON.stringify(data) });
  }

  // a draft the server did not keep (the database away for a moment, the network gone) is said and sent again;
  // a refusal (409: the item is gone, 403: the link) is not retried
  function saveDraft(keepalive) {
    if (draftTimer) { clearTimeout(draftTimer); draftTimer = null; }
    if (!form || !options.length || submitting || closed) return;
    const retry = function () {
      notice(say("draftUnsaved", "Your ticks are not kept yet: the server did not answer."));
      if (!draftTimer) draftTimer = setTimeout(saveDraft, 3000);
    };
    post("/draft", marks(), keepalive).then(function (r) {
      if (r.status >= 500) { retry(); return; }
      if (r.status === 403 || r.status === 410) { close(say("ended", "Session ended.")); return; }  // revoked
      const box = document.getElementById("notices");
      const said = say("draftUnsaved", "");
      if (r.ok && box && said && box.textContent.indexOf(said) >= 0) box.replaceChildren();
    }).catch(retry);
  }

  // flagging reloads the page: ticks made just before it, whose draft is still waiting, are sent first
  const flagForm = document.querySelector("#flag form");
  if (flagForm && form && options.length) {
    flagForm.addEventListener("submit", function (e) {
      if (!draftTimer) return;
      e.preventDefault();
      clearTimeout(draftTimer);
      draftTimer = null;
      post("/draft", marks()).catch(function () {}).finally(function () { flagForm.submit(); });
    });
  }

  // ticks whose draft was still on its way when the page went (a reload at once: the new page can be asked for
  // before the draft arrives) are kept in this tab and put back on the same item
  const PENDING = "rater.pending";
  function keepPending() {
    // with the page's CSRF token, which is this teacher's: a tab that opens another teacher's link restores nothing
    const kept = Object.assign(marks(), { teacher: csrf });
    try { sessionStorage.setItem(PENDING, JSON.stringify(kept)); } catch (e) { /* storage off: the draft goes */ }
  }
  function restorePending() {
    let kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(PENDING) || "null"); sessionStorage.removeItem(PENDING); }
    catch (e) { return; }
    if (!kept || kept.seq !== seq || kept.teacher !== csrf) return;
    options.forEach(function (o) {
      const box = o.querySelector('input[type="checkbox"]');
      box.checked = kept.ticked.indexOf(Number(box.value)) >= 0;
      const reason = kept.reasons[box.value];
      if (box.checked || !reason) return;
      const radio = o.querySelector('input[type="radio"][value="' + CSS.escape(reason) + '"]');
      if (radio) { radio.checked = true; return; }
      const other = o.querySelector('input[type="radio"][value="other"]');
      const text = o.querySelector('input[type="text"]');
      if (other && text) { other.checked = true; text.value = reason; }
    });
    marks();
    draftTimer = setTimeout(saveDraft, 0);  // and the server hears of them (again)
  }

  if (form && options.length) {
    restorePending();
    form.addEventListener("change", function () {
      marks();
      if (draftTimer) clearTimeout(draftTimer);
      draftTimer = setTimeout(saveDraft, 300);
    });
    form.addEventListener("input", function (e) {
      if (e.target.type === "text") {  // typing a reason chooses "other", and is kept as it is typed
        const radio = e.target.closest(".reasons").querySelector('input[value="other"]');
        if (radio) radio.checked = true;
        if (draftTimer) clearTimeout(draftTimer);
        draftTimer = setTimeout(saveDraft, 400);
      }
    });
  }

  function allowed(action) {
    if (closed) return false;
    if (performance.now() - loadedAt < dwell) {
      notice(say("justShown", "This item was just shown: look at it, then press again."));
      return false;
    }
    if (action === "save") {
      const unseen = options.filter(function (o) { return !seen.has(o); });
      if (unseen.length) {
        notice(say(unseen.length === 1 ? "notSeenOne" : "notSeen", "Not shown yet: option {numbers}.").replace(
          "{numbers}", unseen.map(function (o) { return o.dataset.number; }).join(", ")));
        unseen[0].scrollIntoView({ block: "center" });
        return false;
      }
    }
    return true;
  }

  if (form) {
    form.addEventListener("submit", function (e) {
      const action = (e.submitter && e.submitter.value) || "save";
      if (submitting || !allowed(action)) { e.preventDefault(); return; }
      const seconds = document.getElementById("seconds");
      if (seconds) seconds.value = secondsVisible().toFixed(2);
      submitting = true;
    });
  }

  function press(action) {
    const button = form && form.querySelector('button[value="' + action + '"]');
    if (!button || button.disabled) return;
    form.requestSubmit(button);
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || closed) return;
    if (!body.classList.contains("rating") && !body.classList.contains("done")) return;  // keys rate only there
    const t = e.target;
    const typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && /^(text|search)$/.test(t.type)));
    if (typing) return;
    const onControl = t && (t.tagName === "BUTTON" || t.tagName === "A" || t.tagName === "SUMMARY" ||
                            (t.tagName === "INPUT" && (t.type === "checkbox" || t.type === "radio")));
    if (/^[1-9]$/.test(e.key) && options.length) {
      const option = options[Number(e.key) - 1];
      if (option && !seen.has(option)) {  // a tick is a decision about what the teacher has read
        notice(say("tickUnseen", "Option {number} is not in view yet.").replace("{number}", option.dataset.number));
        option.scrollIntoView({ block: "center" });
      } else if (option) {
        const box = option.querySelector('input[type="checkbox"]');
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change", { bubbles: true }));
      }
      e.preventDefault();
    } else if ((e.key === " " && !onControl) || (e.key === "Enter" && !onControl)) {
      e.preventDefault();
      press("save");
    } else if (e.key === "Backspace") {
      e.preventDefault();
      press("back");
    } else if (e.key === "s") {
      e.preventDefault();
      press("skip");
    } else if (e.key === "?") {
      saveDraft(true);
      window.location.href = "/instructions";
    } else if (e.key === "f" && document.getElementById("flag")) {
      e.preventDefault();
      document.getElementById("flag").open = true;
      document.getElementById("flag-note").focus();
    } else if (e.key === "h") {
      saveDraft(true);
      window.location.href = "/history";
    }
  });

  function close(text) {
    closed = true;
    body.classList.add("-closed");
    if (!document.querySelector(".closed-dialog")) {
      const box = document.createElement("div");
      box.className = "closed-dialog";
      box.setAttribute("role", "alert");
      box.textContent = text;
      body.appendChild(box);
    }
  }

  function alive() {
    if (closed) return;
    post("/alive", { seq: seq }).then(function (r) {
      if (r.status === 403 || r.status === 410) { close(say("ended", "Session ended.")); return null; }
      return r.ok ? r.json() : null;
    }).then(function (state) {
      // another tab of this teacher answered: this page shows an item that is gone
      if (state && state.seq !== seq && !submitting && form) window.location.reload();
    }).catch(function () {});
  }
  if (body.classList.contains("rating") || body.classList.contains("done")) setInterval(alive, aliveEvery);

  window.addEventListener("pagehide", function () {
    if (!draftTimer) return;
    keepPending();
    saveDraft(true);
  });

  // the organizer's page updates itself while "Update every 15 s" is ticked (untick it to read at leisure)
  const auto = document.getElementById("auto");
  if (body.classList.contains("study") && auto) {
    setInterval(function () { if (auto.checked) window.location.reload(); }, 15000);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden" && draftTimer) saveDraft(true);  // a phone switching apps
  });
})();
