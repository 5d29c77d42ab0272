// Reviewer dashboard charts. The data comes from the page's JSON block
// (#dashboard-data, written by Django's json_script), so nothing runs inline
// and the enforced CSP holds.
(function () {
  "use strict";

  var BLUE = "#2f5bd3", GREEN = "#067647", GREY = "#667085", ORANGE = "#b54708", PURPLE = "#7a2ed0";

  // Intervals as error bars: a dataset's `errorBars` holds [low, high] per
  // point (null for none), drawn as a whisker with caps over the point.
  var errorBars = {
    id: "errorBars",
    afterDatasetsDraw: function (chartObj) {
      var ctx = chartObj.ctx;
      chartObj.data.datasets.forEach(function (ds, i) {
        if (!ds.errorBars || !chartObj.isDatasetVisible(i)) return;
        var meta = chartObj.getDatasetMeta(i);
        var scale = chartObj.scales[meta.yAxisID];
        ctx.save();
        ctx.strokeStyle = ds.borderColor || GREY;
        ctx.lineWidth = 1.5;
        meta.data.forEach(function (point, j) {
          var ci = ds.errorBars[j];
          if (!ci || ci[0] == null || ci[1] == null) return;
          var top = scale.getPixelForValue(ci[1]), bottom = scale.getPixelForValue(ci[0]);
          ctx.beginPath();
          ctx.moveTo(point.x, top); ctx.lineTo(point.x, bottom);
          ctx.moveTo(point.x - 5, top); ctx.lineTo(point.x + 5, top);
          ctx.moveTo(point.x - 5, bottom); ctx.lineTo(point.x + 5, bottom);
          ctx.stroke();
        });
        ctx.restore();
      });
    }
  };

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return null;
    config.options = Object.assign({ animation: false, responsive: true, aspectRatio: 1.8 }, config.options || {});
    config.plugins = [errorBars];
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
          { label: "held-out accuracy (95% CI)", data: v.map(function (x) { return x.held_out_accuracy; }), borderColor: BLUE, backgroundColor: BLUE,
            errorBars: v.map(function (x) { return x.held_out_accuracy_ci; }) },
          { label: "train accuracy", data: v.map(function (x) { return x.train_accuracy; }), borderColor: GREEN, backgroundColor: GREEN },
          { label: "longer wins", data: v.map(function (x) { return x.length_baseline_accuracy; }), borderColor: GREY, borderDash: [6, 4], pointRadius: 0 },
          { label: "eval loss", data: v.map(function (x) { return x.eval_loss; }), borderColor: ORANGE, backgroundColor: ORANGE, yAxisID: "loss" }
        ]
      },
      options: {
        scales: { y: share("accuracy"), loss: { position: "right", min: 0, title: { display: true, text: "loss" }, grid: { drawOnChartArea: false } } }
      }
    });
  }

  function learningCurve(d) {
    // One curve per kind of model: heads (fast, on cached features) and fine-tunes.
    var points = (d.learning_curve || []).filter(function (p) { return p.n_train != null; });
    var kinds = [["finetune", "fine-tune", BLUE], ["head", "head", ORANGE]];
    var datasets = kinds.map(function (k) {
      var mine = points.filter(function (p) { return (p.kind || "finetune") === k[0]; });
      return { label: k[1] + " held-out accuracy (95% CI)", data: mine.map(function (p) { return { x: p.n_train, y: p.held_out_accuracy }; }),
               showLine: true, borderColor: k[2], backgroundColor: k[2], errorBars: mine.map(function (p) { return p.ci; }) };
    }).filter(function (ds) { return ds.data.length; });
    chart("chart-learning-curve", {
      type: "scatter",
      data: { datasets: datasets },
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

  // One dataset of points with error bars over named figures, on the axis given.
  function estimates(id, d, keys, axis, color) {
    var small = d.small_n || 0;
    chart(id, {
      type: "line",
      data: {
        labels: keys.map(function (k) { var n = d[k[0]].n; return k[1] + " (n=" + n + (n < small ? ", small sample" : "") + ")"; }),
        datasets: [{
          label: "estimate, with its 95% interval",
          data: keys.map(function (k) { return d[k[0]].value; }),
          errorBars: keys.map(function (k) { return d[k[0]].ci; }),
          showLine: false, pointRadius: 6, pointHoverRadius: 7, borderColor: color, backgroundColor: color
        }]
      },
      options: { scales: { y: axis }, layout: { padding: { left: 8, right: 8 } } }
    });
  }

  function agreementCharts(d) {
    estimates("chart-agreement", d, [["percent_agreement", "percent agreement"], ["model_vs_human", "model vs majority"], ["human_ceiling", "human ceiling"]],
      share("share"), BLUE);
    // Kappa and alpha run from -1 (systematic disagreement) through 0 (chance) to 1.
    estimates("chart-agreement-chance", d, [["fleiss_kappa", "Fleiss' kappa"], ["krippendorff_alpha", "Krippendorff's alpha"]],
      { min: -1, max: 1, title: { display: true, text: "kappa / alpha (0 = chance)" },
        grid: { color: function (c) { return c.tick.value === 0 ? GREY : "rgba(0, 0, 0, 0.08)"; } } }, PURPLE);
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
    [versions, learningCurve, calibration, lengthBuckets, agreementCharts, votesPerPair].forEach(function (draw) {
      try { draw(d); } catch (err) { if (window.console) console.error(err); }
    });
    document.body.setAttribute("data-charts-drawn", "1");
  });
})();
