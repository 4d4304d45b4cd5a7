// 民情工作台: live board, time slider, charts. Plain JS, no build step.
"use strict";

(function board() {
  const el = document.getElementById("board");
  if (!el) return;
  const slider = document.getElementById("moment");
  const label = document.getElementById("moment-label");
  let at = slider && slider.dataset.at ? slider.dataset.at : "";
  let loading = false, again = null;

  async function refresh(waitFor) {
    if (loading) { again = waitFor || again || ""; return; }
    loading = true;
    const params = new URLSearchParams(el.dataset.query);
    if (at) params.set("at", at); else params.delete("at");
    if (waitFor) params.set("wait_for", waitFor);
    try {
      const response = await fetch(el.dataset.fragment + "?" + params, { headers: { Accept: "text/html" } });
      if (response.ok) {
        el.innerHTML = await response.text();
        el.dataset.updated = String(Date.now());
        el.dispatchEvent(new CustomEvent("board:updated"));
      }
    } finally {
      loading = false;
      if (again !== null) { const next = again; again = null; refresh(next); }
    }
  }

  if (slider) {
    const first = Date.parse(slider.dataset.first), now = Date.parse(slider.dataset.now);
    const momentOf = (v) => new Date(first + (now - first) * v / 1000);
    const show = (d) => d.toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }).slice(0, -3);
    if (at) slider.value = String(Math.round(1000 * (Date.parse(at) - first) / Math.max(1, now - first)));
    slider.addEventListener("input", () => {
      label.textContent = slider.value === "1000" ? "当前（实时）" : show(momentOf(Number(slider.value)));
    });
    slider.addEventListener("change", () => {
      at = slider.value === "1000" ? "" : momentOf(Number(slider.value)).toISOString();
      const url = new URL(location.href);
      if (at) url.searchParams.set("at", at); else url.searchParams.delete("at");
      history.replaceState(null, "", url);
      refresh();
    });
    document.getElementById("moment-now").addEventListener("click", () => {
      slider.value = "1000";
      slider.dispatchEvent(new Event("input"));
      slider.dispatchEvent(new Event("change"));
    });
  }

  if (window.EventSource && el.dataset.live) {
    const source = new EventSource(el.dataset.live);
    source.addEventListener("changed", (e) => { if (!at) refresh(e.data); });
    source.addEventListener("open", () => { el.dataset.live_open = "1"; document.body.dataset.live = "open"; });
  }
})();

(function charts() {
  const data = document.getElementById("figures-data");
  if (!data || !window.echarts) return;
  const figures = JSON.parse(data.textContent);
  const series = [["response_rate", "响应率"], ["resolution_rate", "解决率"], ["satisfaction_rate", "满意率"], ["composite_score", "综合得分"]];
  const colours = ["#0b57d0", "#188038", "#f29900", "#b3261e"];
  function draw(id, groups, type) {
    const chart = echarts.init(document.getElementById(id), null, { renderer: "svg" });
    chart.setOption({
      color: colours,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 36, bottom: 60 },
      xAxis: { type: "category", data: groups.map((g) => g.name || g.unit || "（无）"), axisLabel: { rotate: groups.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", min: 0, max: 100, name: "%／分" },
      series: series.map(([key, name]) => ({
        name, type, smooth: type === "line",
        data: groups.map((g) => (g[key] === null ? null : key === "composite_score" ? g[key] : Math.round(1000 * g[key]) / 10)),
      })),
      animation: false,
    });
    window.addEventListener("resize", () => chart.resize());
  }
  draw("chart-units", figures.units, "bar");
  draw("chart-months", figures.months, "line");
  document.body.dataset.charts = "drawn";
})();
