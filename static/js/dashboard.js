// Reviewer dashboard charts. The data comes from the page's JSON block
// (#dashboard-data, written by Django's json_script), so nothing runs inline
// and the enforced CSP holds.
(function () {
  "use strict";

  var BLUE = "#2f5bd3", GREEN = "#067647", GREY = "#667085", ORANGE = "#b54708", BAND = "rgba(47, 91, 211, 0.15)";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return null;
    config.options = Object.assign({ animation: false, responsive: true, aspectRatio: 1.8 }, config.options || {});
    return new window.Chart(canvas, config);
  }

  function share(axisTitle) {
    return { min: 0, max: 1, title: { display: true, text: axisTitle } };
  }

  function versions(d) {
    var v = d.versions || [];
    var labels = v.map(function (x) { return "v" + x.number; });
    chart("chart-versions", {
      type: "line",
      data: {
        labels: labels,
        datasets: [
          { label: "CI high", data: v.map(function (x) { return x.held_out_accuracy_ci[1]; }), borderWidth: 0, pointRadius: 0, fill: false },
          { label: "95% CI", data: v.map(function (x) { return x.held_out_accuracy_ci[0]; }), borderWidth: 0, pointRadius: 0, fill: "-1", backgroundColor: BAND },
          { label: "held-out accuracy", data: v.map(function (x) { return x.held_out_accuracy; }), borderColor: BLUE, backgroundColor: BLUE },
          { label: "train accuracy", data: v.map(function (x) { return x.train_accuracy; }), borderColor: GREEN, backgroundColor: GREEN },
          { label: "longer wins", data: v.map(function (x) { return x.length_baseline_accuracy; }), borderColor: GREY, borderDash: [6, 4], pointRadius: 0 },
          { label: "eval loss", data: v.map(function (x) { return x.eval_loss; }), borderColor: ORANGE, backgroundColor: ORANGE, yAxisID: "loss" }
        ]
      },
      options: {
        scales: { y: share("accuracy"), loss: { position: "right", min: 0, title: { display: true, text: "loss" }, grid: { drawOnChartArea: false } } },
        plugins: { legend: { labels: { filter: function (item) { return item.text !== "CI high"; } } } }
      }
    });
  }

  function learningCurve(d) {
    var points = (d.learning_curve || []).filter(function (p) { return p.n_train != null; });
    var xy = function (key) { return points.map(function (p) { return { x: p.n_train, y: key(p) }; }); };
    chart("chart-learning-curve", {
      type: "scatter",
      data: {
        datasets: [
          { label: "held-out accuracy", data: xy(function (p) { return p.held_out_accuracy; }), showLine: true, borderColor: BLUE, backgroundColor: BLUE },
          { label: "CI low", data: xy(function (p) { return p.ci[0]; }), showLine: true, borderColor: BAND, pointRadius: 0 },
          { label: "CI high", data: xy(function (p) { return p.ci[1]; }), showLine: true, borderColor: BAND, pointRadius: 0 }
        ]
      },
      options: { scales: { x: { title: { display: true, text: "labelled training pairs" } }, y: share("held-out accuracy") } }
    });
  }

  function calibration(d) {
    var bins = ((d.calibration || {}).bins || []).filter(function (b) { return b.count > 0; });
    chart("chart-calibration", {
      type: "scatter",
      data: {
        datasets: [
          { label: "model", data: bins.map(function (b) { return { x: b.confidence, y: b.accuracy }; }), showLine: true, borderColor: BLUE, backgroundColor: BLUE },
          { label: "perfect calibration", data: [{ x: 0.5, y: 0.5 }, { x: 1, y: 1 }], showLine: true, borderColor: GREY, borderDash: [6, 4], pointRadius: 0 }
        ]
      },
      options: { scales: { x: { min: 0.5, max: 1, title: { display: true, text: "confidence" } }, y: share("accuracy") } }
    });
  }

  function lengthBuckets(d) {
    var lb = d.length_buckets || { buckets: [] };
    var buckets = lb.buckets || [];
    chart("chart-length-buckets", {
      type: "bar",
      data: {
        labels: buckets.map(function (b) { return b.bucket + " (n=" + b.count + ")"; }),
        datasets: [
          { label: "held-out accuracy", data: buckets.map(function (b) { return b.accuracy; }), backgroundColor: BLUE },
          { type: "line", label: "longer wins (overall)", data: buckets.map(function () { return lb.baseline; }), borderColor: GREY, borderDash: [6, 4], pointRadius: 0 }
        ]
      },
      options: { scales: { y: share("accuracy") } }
    });
  }

  function agreementChart(d) {
    var keys = [["percent_agreement", "percent agreement"], ["fleiss_kappa", "Fleiss' kappa"], ["krippendorff_alpha", "Krippendorff's alpha"],
                ["model_vs_human", "model vs majority"], ["human_ceiling", "human ceiling"]];
    chart("chart-agreement", {
      type: "bar",
      data: {
        labels: keys.map(function (k) { return k[1] + " (n=" + d[k[0]].n + ")"; }),
        datasets: [
          { label: "value", data: keys.map(function (k) { return d[k[0]].value; }), backgroundColor: BLUE },
          { label: "95% CI", data: keys.map(function (k) { var ci = d[k[0]].ci; return ci[0] == null ? null : [ci[0], ci[1]]; }), backgroundColor: BAND, borderColor: BLUE, borderWidth: 1 }
        ]
      },
      options: { scales: { y: { min: Math.min(0, d.fleiss_kappa.value || 0, d.krippendorff_alpha.value || 0), max: 1 } } }
    });
  }

  function votesPerPair(d) {
    var rows = d.votes_per_pair || [];
    chart("chart-votes-per-pair", {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.votes + " votes"; }),
        datasets: [{ label: "pairs", data: rows.map(function (r) { return r.pairs; }), backgroundColor: GREEN }]
      },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "pairs" } } } }
    });
  }

  ready(function () {
    var el = document.getElementById("dashboard-data");
    if (!el || !window.Chart) return;
    var d = JSON.parse(el.textContent);
    [versions, learningCurve, calibration, lengthBuckets, agreementChart, votesPerPair].forEach(function (draw) {
      try { draw(d); } catch (err) { if (window.console) console.error(err); }
    });
    document.body.setAttribute("data-charts-drawn", "1");
  });
})();
