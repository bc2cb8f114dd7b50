(() => {
  "use strict";
  // ---- faithfulness measures (export --evaluate): sort the cards by specificity or retention, highest first,
  // and hide those below a minimum. page.js has sorted by feature number first, so ties keep that order. ----
  const value = (card, name) => {
    const v = card.dataset[name];
    return v === undefined || v === "" ? NaN : Number(v);
  };
  const sortSel = document.getElementById("sort");
  const byMeasure = (name) => {
    for (const grid of document.querySelectorAll(".grid")) {
      const cards = Array.from(grid.children);
      const key = (c) => { const v = value(c, name); return Number.isFinite(v) ? v : -Infinity; };
      cards.sort((a, b) => key(b) - key(a) || 0);
      grid.append(...cards);
    }
  };
  sortSel.addEventListener("change", () => {
    if (sortSel.value === "specificity" || sortSel.value === "retention") byMeasure(sortSel.value);
  });
  const limits = [["specificity", document.getElementById("min-specificity")],
    ["retention", document.getElementById("min-retention")]];
  const filter = () => {
    const mins = limits.map(([name, input]) => [name, input.value.trim() === "" ? NaN : Number(input.value)]);
    let hidden = 0;
    for (const card of document.querySelectorAll(".card")) {
      // a card without the measure (silent) is hidden once a minimum is set
      const out = mins.some(([name, min]) => Number.isFinite(min) && !(value(card, name) >= min));
      card.classList.toggle("below", out);
      if (out) hidden += 1;
    }
    const status = document.getElementById("status");
    status.textContent = hidden ? hidden + " cards below the minimum hidden" : "";
  };
  for (const [, input] of limits) input.addEventListener("input", filter);
})();
