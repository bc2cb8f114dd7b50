(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("auralise-data").textContent);
  const statusEl = document.getElementById("status");
  const say = (msg) => { statusEl.textContent = msg; };
  const KEY_RE = /^\d+-\d+$/;

  // ---- notes: per model feature "L-F", shared by every song's card, kept in localStorage ----
  let store = null;
  try { store = window.localStorage; store.getItem(data.storageKey); } catch (e) { store = null; }
  if (!store) say("notes cannot be kept by this browser here: use Download notes");
  let notes = {};
  const readStore = () => {
    if (!store) return {};
    try {
      const v = JSON.parse(store.getItem(data.storageKey) || "{}");
      return v && typeof v === "object" && !Array.isArray(v) ? v : {};
    } catch (e) { return {}; }
  };
  const save = () => {
    if (!store) return;
    try {
      store.setItem(data.storageKey, JSON.stringify(notes));
    } catch (e) {
      say("could not save notes: " + e.message);
    }
  };
  const fieldsByKey = new Map();
  for (const f of document.querySelectorAll("input.note")) {
    if (!fieldsByKey.has(f.dataset.key)) fieldsByKey.set(f.dataset.key, []);
    fieldsByKey.get(f.dataset.key).push(f);
  }
  const fill = () => {
    for (const [k, fields] of fieldsByKey) {
      const v = typeof notes[k] === "string" ? notes[k] : "";
      for (const f of fields) if (f.value !== v && f !== document.activeElement) f.value = v;
    }
  };
  notes = readStore();
  fill();
  window.addEventListener("storage", (e) => { if (e.key === data.storageKey) { notes = readStore(); fill(); } });
  document.addEventListener("input", (e) => {
    const f = e.target;
    if (!f.classList || !f.classList.contains("note")) return;
    const k = f.dataset.key;
    if (f.value.trim()) notes[k] = f.value; else delete notes[k];
    for (const g of fieldsByKey.get(k) || []) if (g !== f) g.value = f.value;
    save();
  });
  const byFeature = (a, b) => {
    const [la, fa] = a.split("-").map(Number), [lb, fb] = b.split("-").map(Number);
    return la - lb || fa - fb || (a < b ? -1 : a > b ? 1 : 0);
  };
  document.getElementById("download-notes").addEventListener("click", () => {
    const features = {};
    for (const k of Object.keys(notes).sort(byFeature)) features[k] = notes[k];
    const doc = { format: data.notesFormat, version: data.notesVersion, model: data.model, features: features };
    const blob = new Blob([JSON.stringify(doc, null, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = data.notesFile;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    say(Object.keys(features).length + " notes downloaded");
  });
  const fileInput = document.getElementById("notes-file");
  document.getElementById("load-notes").addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    try {
      const doc = JSON.parse(await file.text());
      if (!doc || doc.format !== data.notesFormat || !doc.features || typeof doc.features !== "object") {
        throw new Error("not an auralise notes file");
      }
      if (doc.version !== data.notesVersion) throw new Error("unsupported notes version " + doc.version);
      if (doc.model && data.model && doc.model !== data.model) {
        throw new Error("they are for model " + String(doc.model).slice(0, 12) + ", this page shows "
          + data.model.slice(0, 12));
      }
      let n = 0;
      for (const [k, v] of Object.entries(doc.features)) {
        if (KEY_RE.test(k) && typeof v === "string" && v.trim()) { notes[k] = v; n += 1; }
      }
      save();
      fill();
      say("loaded " + n + " notes from " + file.name);
    } catch (e) {
      say("could not load notes: " + e.message);
    } finally {
      fileInput.value = "";
    }
  });

  // ---- feature players: Chromium refuses more than ~1000 media players on a page, so a card's player is
  // written preload="none" and loads its metadata only while near the viewport; a paused one is released
  // (back to preload="none", which holds no player) when it scrolls far away ----
  const warm = (a) => {
    if (a.preload === "metadata") return;
    a.preload = "metadata";  // Chromium resumes the deferred load by itself
  };
  const cool = (a) => {
    if (a.preload !== "metadata" || !a.paused) return;
    const src = a.getAttribute("src");
    a.preload = "none";
    a.removeAttribute("src");
    a.load();
    if (src !== null) a.setAttribute("src", src);
  };
  const feats = document.querySelectorAll("audio.feat");
  if ("IntersectionObserver" in window) {
    const io = new IntersectionObserver((entries) => {
      for (const en of entries) (en.isIntersecting ? warm : cool)(en.target);
    }, { rootMargin: "1000px 0px" });
    for (const a of feats) io.observe(a);
  }

  // ---- one player at a time, everywhere on the page ----
  const holder = (el) => el.closest(".card, aside.original");
  document.addEventListener("play", (e) => {
    for (const a of document.querySelectorAll("audio")) if (a !== e.target && !a.paused) a.pause();
    const h = holder(e.target);
    if (h) h.classList.add("playing");
  }, true);
  for (const type of ["pause", "ended", "emptied"]) {
    document.addEventListener(type, (e) => {
      const h = e.target.closest && holder(e.target);
      if (h) h.classList.remove("playing");
    }, true);
  }
  const toggle = (audio) => {
    if (!audio) return;
    if (audio.paused) {
      const p = audio.play();
      if (p && p.catch) p.catch((err) => say("cannot play: " + err.message));
    } else {
      audio.pause();
    }
  };

  // ---- --select max/topk:K: play a feature from where a seeded unit is ----
  document.addEventListener("click", (e) => {
    const button = e.target.closest && e.target.closest("button.seek");
    if (!button) return;
    const audio = button.closest(".card").querySelector("audio.feat");
    warm(audio);
    audio.currentTime = Number(button.dataset.time);
    const p = audio.play();
    if (p && p.catch) p.catch((err) => say("cannot play: " + err.message));
  });

  // ---- sorting and filtering ----
  const rankOf = (c) => (c.dataset.rank ? Number(c.dataset.rank) : Infinity);
  const sortCards = (mode) => {
    const active = document.activeElement;
    for (const grid of document.querySelectorAll(".grid")) {
      const cards = Array.from(grid.children);
      cards.sort((a, b) => (mode === "rank" ? rankOf(a) - rankOf(b) || 0 : 0)
        || Number(a.dataset.feature) - Number(b.dataset.feature));
      grid.append(...cards);
    }
    if (active && active !== document.activeElement && active.focus) active.focus({ preventScroll: true });
  };
  const sortSel = document.getElementById("sort");
  sortSel.addEventListener("change", () => sortCards(sortSel.value));
  const hideSilent = document.getElementById("hide-silent");
  hideSilent.addEventListener("change", () => document.body.classList.toggle("hide-silent", hideSilent.checked));

  // ---- keyboard ----
  // Moves look at the focused card's grid, then at the neighbouring grids (other layers, other songs).
  const shown = (el) => el.offsetParent !== null;
  const gridCards = (grid) => Array.from(grid.children).filter(shown);
  const otherGrids = function* (grid, dir) {
    const all = Array.from(document.querySelectorAll(".grid"));
    for (let i = all.indexOf(grid) + dir; i >= 0 && i < all.length; i += dir) yield all[i];
  };
  const beside = (card, dir) => {
    const own = gridCards(card.parentElement);
    const next = own[own.indexOf(card) + dir];
    if (next) return next;
    for (const g of otherGrids(card.parentElement, dir)) {
      const list = gridCards(g);
      if (list.length) return dir > 0 ? list[0] : list[list.length - 1];
    }
    return null;
  };
  const vertical = (card, dir) => {
    const r0 = card.getBoundingClientRect();
    const x0 = r0.left + r0.width / 2;
    const pick = (list) => {  // nearest row in direction dir, then nearest column
      let best = null, bestDy = Infinity, bestDx = Infinity;
      for (const c of list) {
        const r = c.getBoundingClientRect();
        const dy = dir > 0 ? r.top - r0.top : r0.top - r.top;
        if (dy < 4) continue;
        const dx = Math.abs(r.left + r.width / 2 - x0);
        if (dy < bestDy - 4 || (Math.abs(dy - bestDy) <= 4 && dx < bestDx)) { best = c; bestDy = dy; bestDx = dx; }
      }
      return best;
    };
    const inGrid = pick(gridCards(card.parentElement));
    if (inGrid) return inGrid;
    for (const g of otherGrids(card.parentElement, dir)) {
      const list = gridCards(g);
      if (list.length) return pick(list);
    }
    return null;
  };
  const go = (card) => { if (card) { card.focus(); card.scrollIntoView({ block: "nearest" }); } };
  const originalFor = (el) => {
    let section = el && el.closest ? el.closest("section.song") : null;
    if (!section) {
      for (const s of document.querySelectorAll("section.song")) {
        if (s.getBoundingClientRect().bottom > 0) { section = s; break; }
      }
    }
    return section ? section.querySelector("audio.orig-audio") : null;
  };
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t.classList && t.classList.contains("note")) {
      if (e.key === "Escape" || e.key === "Enter") { e.preventDefault(); t.closest(".card").focus(); }
      return;
    }
    if (typing(t)) return;
    if (e.key === "o") { e.preventDefault(); toggle(originalFor(t)); return; }
    const isCard = t.classList && t.classList.contains("card");
    if (!isCard) {
      const onPage = t === document.body || t === document.documentElement;
      if ((e.key === "ArrowDown" || e.key === "ArrowRight") && onPage) {
        const first = Array.from(document.querySelectorAll(".card")).find(
          (c) => shown(c) && c.getBoundingClientRect().top >= 0);
        if (first) { e.preventDefault(); go(first); }
      }
      return;
    }
    switch (e.key) {
      case "ArrowRight": e.preventDefault(); go(beside(t, 1)); break;
      case "ArrowLeft": e.preventDefault(); go(beside(t, -1)); break;
      case "ArrowDown": e.preventDefault(); go(vertical(t, 1)); break;
      case "ArrowUp": e.preventDefault(); go(vertical(t, -1)); break;
      case " ": case "Enter": e.preventDefault(); toggle(t.querySelector("audio")); break;
      case "n": e.preventDefault(); t.querySelector("input.note").focus(); break;
      default: break;
    }
  });
})();
