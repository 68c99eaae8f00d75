// Charts: every element with data-chart="NAME" is drawn by uPlot from
// ROOT/api/chart/NAME ({names, columns, unit}) and redrawn every 2 s with new data.
// data-state tells tests (and people) where a chart stands: loading, empty or drawn.
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2",
                 "#db2777", "#4b5563", "#65a30d", "#9333ea"];
  var root = document.body.getAttribute("data-root");

  function sameNames(a, b) { return a.length === b.length && a.every(function (x, i) { return x === b[i]; }); }

  function options(el, data) {
    var series = [{}].concat(data.names.map(function (name, i) {
      return { label: name, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
               points: { show: data.columns[0].length < 40 } };
    }));
    return { width: el.clientWidth || 600, height: 220, series: series,
             axes: [{}, { label: data.unit, size: 60 }], legend: { live: false } };
  }

  function draw(el, data) {
    var points = data.columns.length ? data.columns[0].length : 0;
    if (!points || !data.names.length) {
      if (el._plot) { el._plot.destroy(); el._plot = null; }
      el.setAttribute("data-state", "empty");
      el.innerHTML = '<p class="muted">no data yet</p>';
      return;
    }
    if (el._plot && sameNames(el._names, data.names)) {
      el._plot.setData(data.columns);
    } else {
      if (el._plot) { el._plot.destroy(); }
      el.innerHTML = "";
      el._plot = new uPlot(options(el, data), data.columns, el);
      el._names = data.names;
    }
    el.setAttribute("data-state", "drawn");
    el.setAttribute("data-points", String(points));
  }

  function refresh(el) {
    fetch(root + "/api/chart/" + el.getAttribute("data-chart"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("chart " + r.status); } return r.json(); })
      .then(function (data) { draw(el, data); })
      .catch(function () { el.setAttribute("data-state", "failed"); });
  }

  function start() {
    var charts = Array.prototype.slice.call(document.querySelectorAll("[data-chart]"));
    charts.forEach(refresh);
    if (charts.length) { setInterval(function () { charts.forEach(refresh); }, 2000); }
    window.addEventListener("resize", function () {
      charts.forEach(function (el) { if (el._plot) { el._plot.setSize({ width: el.clientWidth, height: 220 }); } });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
