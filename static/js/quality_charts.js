// Draws the QA quality charts from the JSON the page embeds (json_script, id
// "quality-chart-data"); no inline script. Chart.js renders onto canvases, so the
// clinicians' usernames and labels never become markup. The tables stay the source of
// the numbers: without this script (or Chart.js) the page loses only the pictures.
(function () {
  "use strict";

  const blob = document.getElementById("quality-chart-data");
  if (!blob || typeof window.Chart === "undefined") {
    return;
  }
  const data = JSON.parse(blob.textContent);
  // Colour-blind-safe palette (Okabe-Ito), then repeats with a different dash.
  const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8c6d1f", "#000000"];
  const OVERALL = "#5b6475";

  function minutesAsMss(minutes) {
    const total = Math.round(minutes * 60);
    const m = Math.floor(total / 60);
    const s = total % 60;
    return m + ":" + String(s).padStart(2, "0");
  }

  function formatValue(chart, value) {
    if (value === null || value === undefined) {
      return "none";
    }
    if (chart.unit === "min") {
      return minutesAsMss(value);
    }
    if (chart.unit === "%") {
      return value + "%";
    }
    return String(value);
  }

  function datasets(chart) {
    let colour = 0;
    const sets = chart.series.map(function (series, index) {
      const lineColour = series.overall ? OVERALL : PALETTE[colour++ % PALETTE.length];
      return {
        label: series.label,
        data: series.values,
        n: series.n,
        borderColor: lineColour,
        backgroundColor: lineColour,
        borderWidth: series.overall ? 3 : 2,
        borderDash: series.overall ? [6, 4] : (index >= PALETTE.length ? [2, 2] : []),
        pointRadius: 3,
        spanGaps: false,
      };
    });
    if (typeof chart.target === "number") {
      sets.push({
        label: chart.target_label,
        data: data.labels.map(function () { return chart.target; }),
        borderColor: "#2c7a3f",
        backgroundColor: "#2c7a3f",
        borderWidth: 1,
        borderDash: [3, 3],
        pointRadius: 0,
        isTarget: true,
      });
    }
    return sets;
  }

  function options(chart) {
    const y = { beginAtZero: true, ticks: {} };
    if (chart.unit === "%") {
      y.max = 100;
      y.ticks.callback = function (value) { return value + "%"; };
    } else if (chart.unit === "min") {
      y.suggestedMax = 10;
      y.ticks.callback = function (value) { return minutesAsMss(value); };
    } else {
      y.ticks.precision = 0;
    }
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: y },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            label: function (item) {
              const set = item.dataset;
              const text = set.label + ": " + formatValue(chart, item.raw);
              if (set.isTarget || chart.unit === "count") {
                return text;
              }
              return text + " (n=" + set.n[item.dataIndex] + ")";
            },
          },
        },
      },
    };
  }

  const byId = new Map(data.charts.map(function (chart) { return [chart.id, chart]; }));
  document.querySelectorAll("canvas[data-metric]").forEach(function (canvas) {
    const chart = byId.get(canvas.dataset.metric);
    if (!chart) {
      return;
    }
    new window.Chart(canvas, {
      type: "line",
      data: { labels: data.labels, datasets: datasets(chart) },
      options: options(chart),
    });
  });
})();
