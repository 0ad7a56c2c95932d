/* `voice-monitor report`: draws the timelines embedded in the report file (the JSON in #vm-data) with
   chart.js, the same code the page uses. */
(function () {
  "use strict";
  const V = window.VMChart;
  const data = JSON.parse(document.getElementById("vm-data").textContent);
  const main = document.getElementById("report");
  if (data.groups.length > 1) {
    const all = data.groups.flatMap((g) => g.rows);
    const box = main.appendChild(V.el("section", { class: "vm-timeline" }));
    box.appendChild(V.el("h2", {}, `All ${data.groups.length} files`));
    V.summaryTable(box.appendChild(V.el("div", { class: "vm-summary-box" })), all, V.labelsOf(data.columns));
  }
  if (!data.groups.length) main.appendChild(V.el("p", { class: "error" }, "The timeline has no windows."));
  for (const g of data.groups) V.timelineView(main, g.rows, data.columns, g.title);
})();
