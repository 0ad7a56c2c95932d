/* voice-monitor: the timeline chart and result views, shared by the page (/) and `voice-monitor report`.
   Plain browser JavaScript, no library. Rows are objects keyed by column name, as the CSV timeline,
   `score --windows` and POST /api/score write them: every `p_<label>` column is a probability; `arousal`,
   `valence` and `speaker` are shown when the rows have them. */
(function (global) {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const KNOWN = {
    neutral: "#8d8d8d", calm: "#3aa6a0", happy: "#f2a516", sad: "#3f6fd8",
    angry: "#d83f3f", fearful: "#8a4fc9", disgust: "#5f9e3a", surprised: "#e052a6",
  };
  const SPARE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
  const OPTIONAL = ["arousal", "valence", "speaker"];

  function num(v) {
    if (v === null || v === undefined || v === "") return NaN;
    return typeof v === "number" ? v : parseFloat(v);
  }
  function labelsOf(columns) {
    return columns.filter((c) => c.startsWith("p_")).map((c) => c.slice(2));
  }
  function columnsOf(rows) {
    const seen = [];
    for (const r of rows) for (const k of Object.keys(r)) if (!seen.includes(k)) seen.push(k);
    return seen;
  }
  function optionalOf(columns, rows) {
    return OPTIONAL.filter((c) => columns.includes(c) && rows.some((r) => r[c] !== "" && r[c] !== null && r[c] !== undefined));
  }
  function color(label, labels) {
    if (KNOWN[label]) return KNOWN[label];
    const i = Math.max(0, labels.indexOf(label));
    return SPARE[i % SPARE.length];
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  function fmt(x, digits) {
    const v = num(x);
    return isNaN(v) ? "" : v.toFixed(digits === undefined ? 2 : digits);
  }
  function clock(s) {
    const v = num(s);
    if (isNaN(v)) return "";
    const m = Math.floor(v / 60);
    return m + ":" + (v - 60 * m).toFixed(1).padStart(4, "0");
  }
  // A dimension on the chart's 0..1 axis: values already in 0..1 stay, -1..1 is mapped onto it.
  function unit(rows, col) {
    const vals = rows.map((r) => num(r[col])).filter((v) => !isNaN(v));
    const signed = vals.some((v) => v < 0);
    return (v) => (signed ? (v + 1) / 2 : v);
  }

  /* The timeline: one line per emotion (its probability over each window), a band above with each
     window's emotion, optional arousal/valence dashed. Redrawn whole each call (cheap for thousands). */
  function timeline(container, rows, labels, opts) {
    opts = opts || {};
    const W = opts.width || 900, H = opts.height || 260;
    const m = { l: 36, r: 10, t: 22, b: 26 };
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "vm-chart", role: "img",
      "aria-label": "emotion probabilities over time" });
    const t0 = opts.start !== undefined ? opts.start : Math.min(0, ...rows.map((r) => num(r.start_s)).filter((v) => !isNaN(v)));
    const t1 = Math.max(t0 + (opts.minSpan || 3), num(opts.end) || 0, ...rows.map((r) => num(r.end_s)).filter((v) => !isNaN(v)));
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * iw;
    const y = (p) => m.t + (1 - p) * ih;
    for (const p of [0, 0.25, 0.5, 0.75, 1]) {
      root.appendChild(svg("line", { x1: m.l, x2: W - m.r, y1: y(p), y2: y(p), class: "vm-grid" }));
      const t = svg("text", { x: m.l - 4, y: y(p) + 4, "text-anchor": "end", class: "vm-tick" });
      t.textContent = p.toFixed(2).replace(/0$/, "");
      root.appendChild(t);
    }
    const step = niceStep((t1 - t0) / 8);
    for (let s = Math.ceil(t0 / step) * step; s <= t1 + 1e-9; s += step) {
      const t = svg("text", { x: x(s), y: H - 8, "text-anchor": "middle", class: "vm-tick" });
      t.textContent = s >= 60 ? clock(s) : s.toFixed(step < 1 ? 1 : 0) + " s";
      root.appendChild(t);
    }
    const sorted = rows.slice().sort((a, b) => num(a.start_s) - num(b.start_s));
    for (const r of sorted) {  // the emotion band
      const a = num(r.start_s), b = num(r.end_s);
      if (isNaN(a) || isNaN(b)) continue;
      const rect = svg("rect", { x: x(a), y: 4, width: Math.max(1, x(b) - x(a) - 1), height: 12,
        fill: color(r.emotion, labels), class: "vm-band" });
      const tip = svg("title");
      tip.textContent = `${clock(a)}–${clock(b)} ${r.emotion} ${fmt(r.confidence)}` + (r.text ? ` “${r.text}”` : "");
      rect.appendChild(tip);
      root.appendChild(rect);
    }
    // Each window is a level from its start to its end; windows that touch or overlap are joined, a pause
    // between them breaks the line.
    const line = (col, stroke, dash, map) => {
      let d = "", prevEnd = -Infinity;
      for (const r of sorted) {
        const a = num(r.start_s), b = num(r.end_s), v = num(r[col]);
        if (isNaN(a) || isNaN(b) || isNaN(v)) continue;
        const yy = y(map ? map(v) : v).toFixed(1);
        const xa = x(Math.max(a, prevEnd)).toFixed(1);
        d += (a - prevEnd > 0.25 ? ` M${xa},${yy}` : ` L${xa},${yy}`) + ` L${x(b).toFixed(1)},${yy}`;
        prevEnd = Math.max(prevEnd, b);
      }
      if (!d) return;
      const attrs = { d: d.trim(), fill: "none", stroke, "stroke-width": 2, class: "vm-line", "data-column": col };
      if (dash) attrs["stroke-dasharray"] = "5 4";
      root.appendChild(svg("path", attrs));
    };
    for (const lab of labels) line("p_" + lab, color(lab, labels));
    for (const col of ["arousal", "valence"]) if (rows.some((r) => !isNaN(num(r[col])))) line(col, "#222", true, unit(rows, col));
    container.replaceChildren(root, legend(labels, rows));
    return root;
  }
  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-3))));
    for (const f of [1, 2, 5, 10]) if (raw <= f * p) return f * p;
    return 10 * p;
  }
  function legend(labels, rows) {
    const box = el("div", { class: "vm-legend" });
    for (const lab of labels) {
      const item = el("span", { class: "vm-key" });
      item.appendChild(el("i", { style: `background:${color(lab, labels)}` }));
      item.appendChild(document.createTextNode(lab));
      box.appendChild(item);
    }
    for (const col of ["arousal", "valence"]) if (rows.some((r) => !isNaN(num(r[col])))) {
      box.appendChild(el("span", { class: "vm-key vm-dashed" }, col + " (dashed)"));
    }
    return box;
  }

  /* Horizontal bars: mean probability per emotion. */
  function bars(container, probs, labels) {
    const box = el("div", { class: "vm-bars" });
    const order = labels.slice().sort((a, b) => (num(probs[b]) || 0) - (num(probs[a]) || 0));
    for (const lab of order) {
      const p = num(probs[lab]) || 0;
      const row = el("div", { class: "vm-bar", "data-label": lab });
      row.appendChild(el("span", { class: "vm-bar-name" }, lab));
      const track = el("span", { class: "vm-bar-track" });
      track.appendChild(el("span", { class: "vm-bar-fill", style: `width:${(100 * p).toFixed(1)}%;background:${color(lab, labels)}` }));
      row.appendChild(track);
      row.appendChild(el("span", { class: "vm-bar-value" }, p.toFixed(3)));
      box.appendChild(row);
    }
    container.replaceChildren(box);
  }

  /* The transcript aligned to windows: one table row per window. */
  function transcript(container, rows, labels, columns) {
    const extra = optionalOf(columns || columnsOf(rows), rows);
    const table = el("table", { class: "vm-transcript" });
    const head = el("tr");
    for (const h of ["time", "emotion", "conf.", ...extra, "words"]) head.appendChild(el("th", {}, h));
    table.appendChild(el("thead")).appendChild(head);
    const body = table.appendChild(el("tbody"));
    const sorted = rows.slice().sort((a, b) => num(a.start_s) - num(b.start_s));
    for (const r of sorted) {
      const tr = el("tr", { class: "vm-window" });
      tr.appendChild(el("td", { class: "vm-time" }, `${clock(r.start_s)}–${clock(r.end_s)}`));
      const em = el("td", { class: "vm-emotion" }, r.emotion || "");
      em.style.borderLeft = `6px solid ${color(r.emotion, labels)}`;
      tr.appendChild(em);
      tr.appendChild(el("td", {}, fmt(r.confidence)));
      for (const c of extra) tr.appendChild(el("td", {}, c === "speaker" ? String(r[c] ?? "") : fmt(r[c])));
      tr.appendChild(el("td", { class: "vm-words" }, r.text || ""));
      body.appendChild(tr);
    }
    container.replaceChildren(table);
    return table;
  }

  /* Per-emotion summary of a timeline: windows, share, mean probability. */
  function emotionSummary(rows, labels) {
    const out = labels.map((lab) => {
      const n = rows.filter((r) => r.emotion === lab).length;
      const ps = rows.map((r) => num(r["p_" + lab])).filter((v) => !isNaN(v));
      return { label: lab, windows: n, share: rows.length ? n / rows.length : 0,
        mean: ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0 };
    });
    return out.sort((a, b) => b.windows - a.windows || b.mean - a.mean);
  }
  function summaryTable(container, rows, labels) {
    const table = el("table", { class: "vm-summary" });
    const head = el("tr");
    for (const h of ["emotion", "windows", "share", "mean probability"]) head.appendChild(el("th", {}, h));
    table.appendChild(el("thead")).appendChild(head);
    const body = table.appendChild(el("tbody"));
    for (const s of emotionSummary(rows, labels)) {
      const tr = el("tr", { "data-label": s.label });
      const name = el("td", {}, s.label);
      name.style.borderLeft = `6px solid ${color(s.label, labels)}`;
      tr.append(name, el("td", {}, String(s.windows)), el("td", {}, (100 * s.share).toFixed(1) + " %"),
        el("td", {}, s.mean.toFixed(3)));
      body.appendChild(tr);
    }
    container.replaceChildren(table);
  }

  function csvText(rows, columns) {
    const q = (v) => {
      const s = v === null || v === undefined ? "" : String(v);
      return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    };
    return [columns.map(q).join(",")].concat(rows.map((r) => columns.map((c) => q(r[c])).join(","))).join("\n") + "\n";
  }
  function parseCSV(text) {
    const rows = [];
    let row = [], field = "", i = 0, quoted = false;
    for (; i < text.length; i++) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ",") { row.push(field); field = ""; }
      else if (ch === "\n" || ch === "\r") {
        if (ch === "\r" && text[i + 1] === "\n") i++;
        row.push(field); field = ""; rows.push(row); row = [];
      } else field += ch;
    }
    if (field !== "" || row.length) { row.push(field); rows.push(row); }
    const header = rows.shift() || [];
    return { columns: header, rows: rows.filter((r) => r.length > 1 || r[0] !== "").map((r) => Object.fromEntries(header.map((h, k) => [h, r[k] ?? ""]))) };
  }
  function download(name, text, type) {
    const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  /* One timeline (a file's windows, or a session's rows): summary, chart, transcript. */
  function timelineView(container, rows, columns, title) {
    const labels = labelsOf(columns);
    const box = el("section", { class: "vm-timeline" });
    if (title) box.appendChild(el("h2", {}, title));
    const dur = rows.length ? Math.max(...rows.map((r) => num(r.end_s)).filter((v) => !isNaN(v))) : 0;
    box.appendChild(el("p", { class: "vm-meta" }, `${rows.length} windows, ${clock(dur)} of audio`));
    const summary = box.appendChild(el("div", { class: "vm-summary-box" }));
    summaryTable(summary, rows, labels);
    const chart = box.appendChild(el("div", { class: "vm-chart-box" }));
    const words = box.appendChild(el("div", { class: "vm-transcript-box" }));
    container.appendChild(box);
    timeline(chart, rows, labels);
    transcript(words, rows, labels, columns);
    return box;
  }

  global.VMChart = { num, labelsOf, columnsOf, optionalOf, color, timeline, bars, transcript, emotionSummary,
    summaryTable, csvText, parseCSV, download, timelineView, clock, fmt, el };
})(window);
