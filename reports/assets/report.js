// Interactive parts of an incident page: view selector, as-of replay, spread, log scale,
// the sources panel and the sortable table. All text from sources is set with textContent.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const dates = data.reportDates;
  const chart = document.getElementById("chart");
  const places = document.getElementById("places");
  const slider = document.getElementById("asof-slider");
  const label = document.getElementById("asof-label");
  const summaryDate = document.getElementById("summary-date");
  const summary = document.querySelector("#asof-summary tbody");
  const placesSummary = document.querySelector("#places-summary tbody");
  const placesBox = document.getElementById("places-summary-box");
  const placesSection = document.getElementById("places-section");
  const placeSelect = document.getElementById("place-select");
  const spreadToggle = document.getElementById("spread-toggle");
  const logToggle = document.getElementById("log-toggle");
  const play = document.getElementById("play");
  const panel = document.getElementById("panel");
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  const STEPS = new Set(["line", "band-high", "band-low", "spread-high", "spread-low"]);
  let view = 0;
  let logScale = false;
  let timer = null;

  function asOf() {
    const i = Number(slider.value);
    return i >= dates.length - 1 ? null : dates[i];
  }

  // A trace as replay(as_of=D) draws it: points up to D, step lines carried on to D.
  function cut(trace, day) {
    const role = trace.meta && trace.meta.role;
    if (role === "spread-high" || role === "spread-low") trace = Object.assign({}, trace, { visible: spreadToggle.checked });
    if (day === null || !trace.x || role === "key") return trace;
    let n = 0;
    while (n < trace.x.length && trace.x[n] <= day) n++;
    const out = Object.assign({}, trace);
    for (const field of ["x", "y", "hovertext", "customdata"]) {
      if (Array.isArray(trace[field])) out[field] = trace[field].slice(0, n);
    }
    if (STEPS.has(role) && n > 0 && out.x[n - 1] < day) {
      out.x.push(day);
      out.y.push(out.y[n - 1]);
      if (out.customdata) {
        const last = out.customdata[n - 1];
        out.customdata.push(Array.isArray(last) ? [last[0], "carried", last[2]] : last);
      }
      if (out.hovertext) out.hovertext.push("<b>" + escapeHtml(trace.meta.series || "") + "</b> · " + day +
        "<br>" + escapeHtml(out.customdata ? out.customdata[n - 1][0] : "") + " (carried)");
    }
    return out;
  }

  function escapeHtml(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function layout(figure) {
    const l = JSON.parse(JSON.stringify(figure.layout));
    l.yaxis.type = logScale ? "log" : "linear";
    if (logScale) delete l.yaxis.rangemode;
    if (window.innerWidth < 700) {
      // On a phone the legend goes below the chart, so the chart keeps the width.
      l.legend = Object.assign({}, l.legend, { orientation: "h", x: 0, y: -0.25, yanchor: "top" });
      l.margin = Object.assign({}, l.margin, { l: 45, r: 8 });
    }
    return l;
  }

  function fillPlaces(current) {
    const chosen = placeSelect.value;
    placeSelect.replaceChildren(placeSelect.options[0]);
    if (!current.places) return;
    const names = [...new Set(current.places.data.map((t) => t.meta && t.meta.place).filter(Boolean))].sort();
    for (const name of names) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      placeSelect.appendChild(option);
    }
    placeSelect.value = names.includes(chosen) ? chosen : "";
  }

  function placeTraces(current, day) {
    const place = placeSelect.value;
    return current.places.data
      .filter((t) => !place || !t.meta || t.meta.role === "key" || t.meta.place === place)
      .map((t) => cut(t, day));
  }

  function draw() {
    const day = asOf();
    const current = data.views[view];
    const traces = current.figure.data.map((t) => cut(t, day));
    Plotly.react(chart, traces, layout(current.figure), config);
    bind(chart);
    let placeData = [];
    if (current.places) {
      placesSection.hidden = false;
      placeData = placeTraces(current, day);
      Plotly.react(places, placeData, layout(current.places), config);
      bind(places);
    } else {
      placesSection.hidden = true;
      Plotly.purge(places);
      places.dataset.bound = "";
    }
    const shown = day || dates[dates.length - 1] || "";
    label.textContent = shown;
    summaryDate.textContent = shown;
    writeSummary(summary, traces);
    placesBox.hidden = !current.places;
    writeSummary(placesSummary, placeData);
  }

  function writeSummary(body, traces) {
    body.replaceChildren();
    for (const trace of traces) {
      if (!trace.meta || trace.meta.role !== "line" || !trace.x.length) continue;
      const last = trace.x.length - 1;
      const row = document.createElement("tr");
      for (const text of [trace.meta.series, trace.customdata[last][0], trace.customdata[last][1], trace.x[last]]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      }
      body.appendChild(row);
    }
  }

  // The sources of a point, read from their rows in the table below the chart.
  function showSources(ids) {
    const body = document.getElementById("panel-body");
    body.replaceChildren();
    for (const id of ids) {
      const row = document.getElementById("obs-" + id);
      if (!row) continue;
      const cells = row.cells;
      const item = document.createElement("div");
      item.className = "source";
      const head = document.createElement("p");
      const strong = document.createElement("strong");
      strong.textContent = cells[1].textContent + " · " + cells[0].firstChild.textContent + " · " + cells[5].textContent;
      head.appendChild(strong);
      head.appendChild(document.createTextNode(" (" + cells[4].textContent + ", " + id + ")"));
      item.appendChild(head);
      const quoteText = cells[6].querySelector(".q").textContent;
      if (quoteText) {
        const quote = document.createElement("blockquote");
        quote.textContent = quoteText;
        item.appendChild(quote);
      }
      const source = document.createElement("p");
      const original = cells[7].querySelector("a");
      if (original && /^https?:\/\//i.test(original.getAttribute("href"))) {
        const link = document.createElement("a");
        link.href = original.getAttribute("href");
        link.rel = "noopener noreferrer";
        link.target = "_blank";
        link.textContent = original.textContent;
        source.appendChild(link);
      } else {
        source.textContent = cells[7].textContent;
      }
      item.appendChild(source);
      const jump = document.createElement("a");
      jump.href = "#obs-" + id;
      jump.textContent = "see it in the table";
      item.appendChild(jump);
      body.appendChild(item);
    }
    panel.hidden = false;
  }

  function onClick(event) {
    const point = event.points && event.points[0];
    if (!point || point.customdata === undefined) return;
    const ids = Array.isArray(point.customdata[2]) ? point.customdata[2] : point.customdata;
    if (Array.isArray(ids)) showSources(ids);
  }

  const select = document.getElementById("view-select");
  if (select) select.addEventListener("change", () => { view = Number(select.value); fillPlaces(data.views[view]); draw(); });
  placeSelect.addEventListener("change", draw);
  slider.addEventListener("input", draw);
  spreadToggle.addEventListener("change", draw);
  logToggle.addEventListener("click", () => {
    logScale = !logScale;
    logToggle.setAttribute("aria-pressed", String(logScale));
    logToggle.textContent = logScale ? "Linear scale" : "Log scale";
    draw();
  });
  play.addEventListener("click", () => {
    if (timer) {
      clearInterval(timer);
      timer = null;
      play.textContent = "▶ Replay the reports";
      play.setAttribute("aria-pressed", "false");
      return;
    }
    slider.value = 0;
    draw();
    play.textContent = "■ Stop";
    play.setAttribute("aria-pressed", "true");
    timer = setInterval(() => {
      if (Number(slider.value) >= dates.length - 1) {
        play.click();
        return;
      }
      slider.value = Number(slider.value) + 1;
      draw();
    }, 900);
  });
  document.getElementById("panel-close").addEventListener("click", () => { panel.hidden = true; });

  // Sortable table: click a header to sort by it, again to reverse.
  for (const table of document.querySelectorAll("table.sortable")) {
    const headers = table.querySelectorAll("th");
    headers.forEach((th, column) => {
      th.tabIndex = 0;
      const sort = () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const numeric = th.dataset.type === "number";
        const rows = Array.from(table.tBodies[0].rows);
        rows.sort((a, b) => {
          const x = a.cells[column].dataset.sort ?? a.cells[column].textContent;
          const y = b.cells[column].dataset.sort ?? b.cells[column].textContent;
          const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
          return ascending ? order : -order;
        });
        table.tBodies[0].append(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  }

  function bind(div) {
    if (div.dataset.bound) return;
    div.on("plotly_click", onClick);
    div.dataset.bound = "yes";
  }

  fillPlaces(data.views[view]);
  draw();
})();
