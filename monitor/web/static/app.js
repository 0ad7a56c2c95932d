/* voice-monitor page: Files (upload and score), Record (browser microphone over a WebSocket), Watch (the
   server's microphone over Server-Sent Events). Charts and tables come from chart.js (VMChart). */
(function () {
  "use strict";
  const V = window.VMChart;
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token") || "";
  const withToken = (url) => (token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url);
  let health = { labels: [], max_upload_mb: 0 };
  let pending = 0;

  // --- tabs ------------------------------------------------------------------------------------
  function show(tab) {
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === tab);
    for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== "panel-" + tab;
    if (tab === "watch") watch();
  }
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.tab));

  fetch("/api/health").then((r) => r.json()).then((h) => {
    health = h;
    $("server-info").textContent = `model ${h.model} · text: ${h.transcriber} · v${h.version}`;
    $("limits").textContent = `Up to ${h.max_upload_mb} MB per file; ${h.max_parallel} scored at once, the others wait.`;
    $("tab-watch").hidden = !h.mic;
    if (location.hash === "#watch" && h.mic) show("watch");
  }).catch(() => { $("server-info").textContent = "server not reachable"; });
  if (location.hash === "#record") show("record");

  // --- files -----------------------------------------------------------------------------------
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const f of e.dataTransfer.files) upload(f);
  });
  $("file-input").addEventListener("change", (e) => {
    for (const f of e.target.files) upload(f);
    e.target.value = "";
  });

  function card(name) {
    const c = V.el("div", { class: "card file-card" });
    const head = c.appendChild(V.el("div", { class: "card-head" }));
    head.appendChild(V.el("span", { class: "name" }, name));
    const state = head.appendChild(V.el("span", { class: "state" }, "uploading…"));
    const bar = head.appendChild(V.el("progress", { max: "100", value: "0" }));
    $("results").prepend(c);
    return { c, head, state, bar };
  }

  function upload(file) {
    const ui = card(file.name);
    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/score");
    if (token) xhr.setRequestHeader("Authorization", "Bearer " + token);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) ui.bar.value = (100 * e.loaded) / e.total;
    };
    xhr.upload.onload = () => {
      ui.bar.value = 100;
      ui.state.textContent = "scoring…";
      pending++;
      pollQueue();
    };
    xhr.onload = () => {
      pending = Math.max(0, pending - 1);
      ui.bar.remove();
      const body = xhr.response || {};
      if (xhr.status === 200) showResult(ui, body);
      else failed(ui, body.error || `the server answered ${xhr.status}`);
    };
    xhr.onerror = () => { pending = Math.max(0, pending - 1); ui.bar.remove(); failed(ui, "the upload failed (server unreachable?)"); };
    xhr.send(form);
  }

  // While files wait for a free scoring slot, say so (the server scores a few at once).
  let polling = false;
  function pollQueue() {
    if (polling) return;
    polling = true;
    const tick = () => {
      if (!pending) { polling = false; return; }
      fetch("/api/health").then((r) => r.json()).then((h) => {
        for (const s of document.querySelectorAll(".file-card .state")) {
          if (s.textContent.startsWith("scoring")) s.textContent = h.waiting ? `scoring… (${h.waiting} waiting for a free slot)` : "scoring…";
        }
      }).catch(() => {}).finally(() => setTimeout(tick, 1000));
    };
    setTimeout(tick, 500);
  }

  function failed(ui, message) {
    ui.state.textContent = "";
    ui.head.appendChild(V.el("span", { class: "error" }, message));
    ui.c.classList.add("failed");
  }

  function showResult(ui, body) {
    const s = body.summary, rows = body.windows;
    const columns = Object.keys(s);
    const wcols = rows.length ? Object.keys(rows[0]) : [];
    const labels = V.labelsOf(columns);
    ui.state.textContent = "";
    if (s.emotion) {
      const em = ui.head.appendChild(V.el("span", { class: "emotion-big emotion" }, s.emotion));
      em.style.color = V.color(s.emotion, labels);
      ui.head.appendChild(V.el("span", { class: "muted" }, `confidence ${V.fmt(s.confidence)} · ${s.windows} window${s.windows === 1 ? "" : "s"} · ${V.fmt(s.duration_s, 1)} s (speech ${V.fmt(s.speech_s, 1)} s)`));
    } else {
      ui.head.appendChild(V.el("span", { class: "error" }, s.error || "no speech found"));
    }
    for (const c of V.optionalOf(columns, [s])) ui.head.appendChild(V.el("span", { class: "muted opt-" + c }, `${c} ${c === "speaker" ? s[c] : V.fmt(s[c])}`));
    const grid = ui.c.appendChild(V.el("div", { class: "row2" }));
    const probs = Object.fromEntries(labels.map((l) => [l, s["p_" + l]]));
    V.bars(grid.appendChild(V.el("div", { class: "probs" })), probs, labels);
    const chart = grid.appendChild(V.el("div", { class: "chart" }));
    if (rows.length) V.timeline(chart, rows, labels, { end: s.duration_s });
    if (s.text) ui.c.appendChild(V.el("p", { class: "text" }, "“" + s.text + "”"));
    if (rows.length) V.transcript(ui.c.appendChild(V.el("div", { class: "vm-transcript-box" })), rows, labels, wcols);
    const dl = ui.c.appendChild(V.el("div", { class: "downloads" }));
    const base = s.path.replace(/\.[^.]*$/, "");
    const b1 = dl.appendChild(V.el("button", { class: "dl-csv" }, "Download CSV"));
    b1.onclick = () => V.download(base + "-windows.csv", V.csvText(rows, wcols.length ? wcols : ["path"]), "text/csv");
    const b2 = dl.appendChild(V.el("button", { class: "dl-json" }, "Download JSON"));
    b2.onclick = () => V.download(base + ".json", JSON.stringify(body, null, 1), "application/json");
  }

  // --- live views (record and watch) --------------------------------------------------------------
  class LiveView {
    constructor(container) {
      this.container = container;
      this.rows = new Map(); // index -> row (the window at once, replaced by the row with its words)
      this.columns = [];
      this.labels = [];
      container.replaceChildren();
      const head = container.appendChild(V.el("div", { class: "card-head" }));
      this.current = head.appendChild(V.el("span", { class: "emotion-big live-emotion" }, "–"));
      this.meta = head.appendChild(V.el("span", { class: "muted live-meta" }, ""));
      const lv = head.appendChild(V.el("span", { class: "level", title: "input level" }));
      this.level = lv.appendChild(V.el("span"));
      this.partial = head.appendChild(V.el("span", { class: "muted live-error" }, ""));
      this.chart = container.appendChild(V.el("div", { class: "chart live-chart" }));
      this.words = container.appendChild(V.el("div", { class: "vm-transcript-box live-words" }));
      this.dirty = false;
    }
    handle(m) {
      if (m.type === "hello") { this.columns = m.columns; this.labels = m.labels; this.meta.textContent = `${m.source} · text: ${m.text}`; }
      else if (m.type === "window" || m.type === "row") {
        const prev = this.rows.get(m.row.index);
        if (m.type === "window" && prev) return;  // the row with words arrived first
        this.rows.set(m.row.index, m.row);
        if (!this.labels.length) { this.columns = Object.keys(m.row); this.labels = V.labelsOf(this.columns); }
        if (m.type === "window") {
          this.current.textContent = m.row.emotion;
          this.current.style.color = V.color(m.row.emotion, this.labels);
        }
        this.schedule();
      } else if (m.type === "status") {
        this.level.style.width = Math.max(0, Math.min(100, (m.level_dbfs + 70) * 100 / 70)) + "%";
        this.meta.dataset.windows = m.windows;
        this.partial.textContent = m.error || "";
        this.status = m;
      }
    }
    schedule() {
      if (this.dirty) return;
      this.dirty = true;
      requestAnimationFrame(() => this.draw());
    }
    draw() {
      this.dirty = false;
      const rows = [...this.rows.values()];
      V.timeline(this.chart, rows, this.labels, { minSpan: 30 });
      V.transcript(this.words, rows, this.labels, this.columns);
      this.words.scrollTop = this.words.scrollHeight;
    }
    csv() { return V.csvText([...this.rows.values()], this.columns); }
  }

  // --- record ------------------------------------------------------------------------------------
  let rec = null;
  $("rec-start").addEventListener("click", startRecording);
  $("rec-stop").addEventListener("click", stopRecording);
  const recStatus = (t, bad) => { $("rec-status").textContent = t; $("rec-status").className = bad ? "error" : "muted"; };

  async function startRecording() {
    if (rec) return;
    $("rec-start").disabled = true;
    recStatus("asking for the microphone…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { autoGainControl: false, noiseSuppression: false, echoCancellation: false, channelCount: 1 },
      });
    } catch (e) {
      recStatus("no microphone: " + e.message + " (the page must be opened as http://127.0.0.1 or over HTTPS)", true);
      $("rec-start").disabled = false;
      return;
    }
    const ctx = new AudioContext();
    try {
      await ctx.audioWorklet.addModule("/static/mic-worklet.js");
    } catch (e) {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close();
      recStatus("this browser cannot process audio here (AudioWorklet): " + e.message, true);
      $("rec-start").disabled = false;
      return;
    }
    const node = new AudioWorkletNode(ctx, "pcm16k");
    const src = ctx.createMediaStreamSource(stream);
    const mute = ctx.createGain();
    mute.gain.value = 0;
    src.connect(node).connect(mute).connect(ctx.destination);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(withToken(`${proto}//${location.host}/ws/record?rate=16000&channels=1`));
    ws.binaryType = "arraybuffer";
    const view = new LiveView($("rec-view"));
    rec = { stream, ctx, ws, view, node, started: performance.now() };
    node.port.onmessage = (e) => { if (ws.readyState === 1) ws.send(e.data); };
    ws.onopen = () => { recStatus("recording… speak, the windows appear every 3 s of speech"); $("rec-stop").disabled = false; };
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "error") { recStatus(m.error, true); return; }
      if (m.type === "end") { finished(m); return; }
      view.handle(m);
    };
    ws.onclose = (e) => {
      if (!rec || rec.ws !== ws) return;  // ended normally (finished() ran)
      if ($("rec-status").className !== "error") recStatus(`the server closed the recording (${e.reason || "connection lost"})`, true);
      cleanup();
      $("rec-start").disabled = false;
      $("rec-stop").disabled = true;
    };
  }

  function stopRecording() {
    if (!rec) return;
    $("rec-stop").disabled = true;
    recStatus("stopping: finishing the last windows and words…");
    rec.stream.getTracks().forEach((t) => t.stop());
    rec.ctx.close();
    if (rec.ws.readyState === 1) rec.ws.send("stop");
  }

  function cleanup() {
    if (!rec) return;
    rec.stream.getTracks().forEach((t) => t.stop());
    if (rec.ctx.state !== "closed") rec.ctx.close();
    rec = null;
  }

  function finished(m) {
    const r = rec;
    recStatus(`stopped: ${m.windows} windows over ${V.fmt(m.position_s, 1)} s`);
    if (r && m.csv !== undefined) {
      const dl = r.view.container.appendChild(V.el("div", { class: "downloads" }));
      const b = dl.appendChild(V.el("button", { class: "dl-csv", id: "rec-csv" }, "Download the session's CSV"));
      const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
      b.onclick = () => V.download(`recording-${stamp}.csv`, m.csv, "text/csv");
      r.view.container.dataset.csvRows = String(m.rows);
    }
    cleanup();
    $("rec-start").disabled = false;
  }

  // --- watch ------------------------------------------------------------------------------------
  let watching = null;
  function watch() {
    if (watching) return;
    const view = new LiveView($("watch-view"));
    const es = new EventSource(withToken("/api/mic/events"));
    watching = es;
    es.onmessage = (e) => view.handle(JSON.parse(e.data));
    es.onopen = () => { $("watch-status").textContent = "watching the server's microphone"; };
    es.onerror = () => { $("watch-status").textContent = "connection lost; retrying…"; };
  }
})();
