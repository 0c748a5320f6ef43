// Interactive parts of an incident page: view selector, as-of replay, spread, log scale,
// the sources panel and the paged, sortable table. All text from sources is set with textContent.
(async function () {
  "use strict";
  const data = JSON.parse(document.getElementById("page-data").textContent);
  // The bulk of the page (charts, observations) comes deflated; the browser inflates it.
  const text = atob(data.packed);
  const packed = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) packed[i] = text.charCodeAt(i);
  Object.assign(data, JSON.parse(await new Response(
    new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"))).text()));
  const obs = data.observations;
  const rowOf = new Map(obs.id.map((id, i) => [id, i]));
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
  const placesLegend = document.getElementById("places-legend");
  const headline = document.getElementById("headline");
  const headlineDate = document.getElementById("headline-date");
  const spreadToggle = document.getElementById("spread-toggle");
  const logToggle = document.getElementById("log-toggle");
  const play = document.getElementById("play");
  const busyToggle = document.getElementById("busy-toggle");
  const panel = document.getElementById("panel");
  // On a phone the toolbar would sit on the chart's title; touch zooms and pans without it.
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"],
    displayModeBar: window.innerWidth >= 700 ? "hover" : false };
  const STEPS = new Set(["line", "band-high", "band-low", "spread-high", "spread-low"]);
  let view = 0;
  let logScale = false;
  let busy = false;
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
    if (trace.error_y) {
      out.error_y = Object.assign({}, trace.error_y, { array: trace.error_y.array.slice(0, n),
        arrayminus: trace.error_y.arrayminus.slice(0, n) });
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

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function dayText(iso) {
    return Number(iso.slice(8, 10)) + " " + MONTHS[Number(iso.slice(5, 7)) - 1] + " " + iso.slice(0, 4);
  }

  function short(text, limit) {
    return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
  }

  // Escaped text in lines of about width characters joined by <br> (hover labels do not wrap).
  function wrapped(text, width, limit) {
    const cut = text.length <= limit ? text : text.slice(0, limit - 1).trimEnd() + "…";
    const lines = [];
    let line = "";
    for (const word of cut.split(/\s+/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line ? line + " " + word : word;
      }
    }
    lines.push(line);
    return lines.map(escapeHtml).join("<br>");
  }

  // A point's tooltip: monitor, date, figure and basis, then the quote and source of the newest
  // observation it rests on (from the table's data: each quote is in the page once), then its flag.
  function hoverOf(trace, i) {
    const [words, basis, ids, kind, detail] = trace.customdata[i];
    const iso = trace.x[i];
    let text = "<b>" + escapeHtml(trace.meta.series) + "</b> · " + iso.slice(8, 10) + " " +
      MONTHS[Number(iso.slice(5, 7)) - 1] + " " + iso.slice(0, 4) + "<br>" + escapeHtml(words) + " (" + basis + ")";
    if (basis === "carried") {
      text += "<br>nothing new reported; carried from the last report";
    } else {
      const r = rowOf.get(ids[ids.length - 1]);
      if (r !== undefined) {
        if (obs.quote[r]) text += "<br>“" + wrapped(obs.quote[r], 64, 280) + "”";
        text += "<br>" + escapeHtml(obs.title[r]) + (obs.url[r] ? "<br>" + escapeHtml(obs.url[r]) : "");
      }
      if (ids.length > 1) text += "<br>rests on " + ids.length + " observations; click for all";
    }
    if (kind !== undefined) text += "<br><b>" + escapeHtml(kind) + "</b>: " + wrapped(detail, 70, 2000);
    return text;
  }

  // A view's hover labels are written when it is first drawn: a page of many views draws one at first.
  function withHovers(current) {
    if (!current.hovers) {
      for (const trace of current.figure.data) {
        const role = trace.meta && trace.meta.role;
        if (role === "line" || role === "flag") trace.hovertext = trace.x.map((_, i) => hoverOf(trace, i));
      }
      current.hovers = true;
    }
    return current;
  }

  // An item's latest report on or before day (null: its last), or null when it had not reported yet.
  function latest(item, day) {
    let n = item.x.length;
    if (day !== null) while (n > 0 && item.x[n - 1] > day) n--;
    if (!n) return null;
    const i = n - 1;
    return { date: item.x[i], lo: item.lo[i], hi: item.hi[i], w: item.w[i], ids: item.ids[i],
             monitor: item.monitor, colour: item.colour, shape: item.shape };
  }

  // Dot charts of latest figures: one x axis per group, a row per label, a dot per monitor,
  // a whisker for a range and a right-pointing arrow for a floor. Every text is escaped for Plotly.
  // On a phone, labels sit above their dots (stacked), so the dots keep the whole width.
  function dotChart(div, groups, rowHeight, stacked) {
    const traces = [];
    const annotations = [];
    const shapes = {};
    const l = { margin: { l: 10, r: 24, t: 8, b: 10 }, showlegend: false, hovermode: "closest",
                hoverlabel: { align: "left", bgcolor: "white", font: { size: 12 } },
                font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 } };
    const gap = 64;
    const height = groups.reduce((h, g) => h + g.rows.length * rowHeight + gap, 16);
    let top = 8;
    groups.forEach((group, k) => {
      const suffix = k ? String(k + 1) : "";
      const span = group.rows.length * rowHeight;
      const y1 = 1 - top / height, y0 = 1 - (top + span) / height;
      top += span + gap;
      let most = 1;
      group.rows.forEach((row, r) => {
        for (const dot of row.dots) {
          most = Math.max(most, dot.hi === null ? dot.lo * 1.15 : dot.hi);
          const kind = dot.hi === null ? "floor" : dot.hi > dot.lo ? "range" : "dot";
          const key = k + "|" + dot.monitor + "|" + kind;
          let t = shapes[key];
          if (!t) {
            t = shapes[key] = { type: "scatter", mode: "markers", xaxis: "x" + suffix, yaxis: "y" + suffix,
              x: [], y: [], hovertext: [], hoverinfo: "text", customdata: [], name: escapeHtml(dot.monitor),
              meta: { role: kind, monitor: dot.monitor },
              marker: { color: dot.colour, size: kind === "floor" ? 13 : 10,
                        symbol: kind === "floor" ? "triangle-right" : dot.shape, line: { color: "white", width: 1 } } };
            if (kind === "range") {
              t.error_x = { type: "data", symmetric: false, array: [], arrayminus: [], color: dot.colour,
                            thickness: 2.5, width: 7 };
            }
            traces.push(t);
          }
          t.x.push(dot.lo);
          t.y.push(r);
          if (t.error_x) {
            t.error_x.array.push(dot.hi - dot.lo);
            t.error_x.arrayminus.push(0);
          }
          t.hovertext.push("<b>" + escapeHtml(dot.monitor) + "</b> · " + escapeHtml(row.name) + "<br>" +
            escapeHtml(dot.w) + " · reported " + dayText(dot.date));
          t.customdata.push([dot.w, "reported", dot.ids]);
        }
      });
      l["xaxis" + suffix] = { anchor: "y" + suffix, range: [0, most * 1.05], tickformat: ",d", fixedrange: true,
        showgrid: true, gridcolor: "#eee", zeroline: true, automargin: true,
        title: { text: escapeHtml(group.title), standoff: 4, font: { size: 12 } } };
      l["yaxis" + suffix] = { domain: [Math.max(y0, 0), Math.min(y1, 1)], anchor: "x" + suffix, fixedrange: true,
        range: [group.rows.length - 0.5, -0.5], tickvals: group.rows.map((_, r) => r),
        ticktext: group.rows.map((row) => (stacked ? "" : row.label)), automargin: true, showgrid: false,
        zeroline: false, showticklabels: !stacked };
      if (stacked) {
        group.rows.forEach((row, r) => annotations.push({ x: 0, xref: "x" + suffix + " domain", xanchor: "left",
          y: r - 0.18, yref: "y" + suffix, yanchor: "bottom", showarrow: false, align: "left",
          text: row.label.replace("<br>", " "), font: { size: 11 } }));
      }
    });
    l.annotations = annotations;
    l.height = height;
    div.style.height = height + "px";
    Plotly.react(div, traces, l, Object.assign({}, config, { displayModeBar: false }));
    bind(div);
  }

  function drawHeadline(day) {
    const phone = window.innerWidth < 700;
    const groups = [];
    const byMeasure = {};
    for (const item of data.headline) {
      const point = latest(item, day);
      if (!point) continue;
      let group = byMeasure[item.measure];
      if (!group) groups.push(group = byMeasure[item.measure] = { title: item.measure, rows: [] });
      const name = item.monitor + " · " + item.category;
      group.rows.push({ name: name, top: point.hi === null ? point.lo : point.hi, dots: [point],
        label: "<b>" + escapeHtml(short(name, phone ? 24 : 34)) + "</b><br>" + escapeHtml(point.w) + " · " + dayText(point.date) });
    }
    for (const group of groups) group.rows.sort((a, b) => b.top - a.top);
    dotChart(headline, groups, phone ? 46 : 40, phone);
  }

  function drawPlaces(current, day) {
    const rows = {};
    const monitors = new Map();
    const glyphs = { circle: "●", square: "■", diamond: "◆", star: "★" };
    for (const item of current.places) {
      const point = latest(item, day);
      if (!point) continue;
      const row = rows[item.place] = rows[item.place] || { name: item.place, top: 0, dots: [] };
      row.dots.push(point);
      row.top = Math.max(row.top, point.hi === null ? point.lo : point.hi);
      monitors.set(item.monitor, item);
    }
    const sorted = Object.values(rows).sort((a, b) => b.top - a.top || a.name.localeCompare(b.name));
    for (const row of sorted) row.label = escapeHtml(short(row.name, window.innerWidth < 700 ? 22 : 40));
    placesLegend.replaceChildren();
    for (const [monitor, item] of monitors) {
      const entry = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "glyph";
      swatch.style.color = item.colour;
      swatch.textContent = glyphs[item.shape] + " ";
      entry.append(swatch, document.createTextNode(monitor));
      placesLegend.appendChild(entry);
    }
    document.getElementById("places-view").textContent = current.label;
    dotChart(places, [{ title: current.label.split(" · ")[0], rows: sorted }], 26, false);
  }

  // Zoomed on the busy weeks, each series whose latest figure lies beyond them gets a marker at the edge.
  function zoomed(l, range, traces) {
    l.xaxis.range = range;
    l.annotations = [];
    for (const t of traces) {
      if (!t.meta || t.meta.role !== "line" || !t.x.length) continue;
      const last = t.x.length - 1;
      if (t.x[last] <= range[1]) continue;
      const c = t.customdata[last];
      l.annotations.push({ x: 1, xref: "paper", xanchor: "right", y: t.y[last], yref: "y", showarrow: false,
        text: escapeHtml(t.meta.series) + " " + escapeHtml(c[0]) + " on " + dayText(t.x[last]) + " ▶",
        font: { size: 12, color: t.line.color }, bgcolor: "rgba(255,255,255,0.85)" });
    }
    return l;
  }

  function layout(figure) {
    const l = JSON.parse(JSON.stringify(figure.layout));
    l.yaxis.type = logScale ? "log" : "linear";
    if (logScale) delete l.yaxis.rangemode;
    if (window.innerWidth < 700) {
      // On a phone the legend goes below the chart, so the chart keeps the width.
      l.legend = Object.assign({}, l.legend, { orientation: "h", x: 0, y: -0.25, yanchor: "top" });
      l.margin = Object.assign({}, l.margin, { l: 45, r: 8 });
      if (!l.xaxis.dtick) {
        // Few two-line date ticks: a phone has no room for slanted ones.
        Object.assign(l.xaxis, { nticks: 5, tickangle: 0, tickformat: "%-d %b<br>%Y", automargin: true });
        delete l.xaxis.tickformatstops;
      }
    }
    return l;
  }

  function draw() {
    const day = asOf();
    const current = withHovers(data.views[view]);
    const traces = current.figure.data.map((t) => cut(t, day));
    busyToggle.hidden = !current.busy;
    const l = layout(current.figure);
    Plotly.react(chart, traces, current.busy && busy ? zoomed(l, current.busy, traces) : l, config);
    bind(chart);
    drawHeadline(day);
    if (current.places) {
      placesSection.hidden = false;
      drawPlaces(current, day);
    } else {
      placesSection.hidden = true;
      Plotly.purge(places);
      places.dataset.bound = "";
    }
    const shown = day || dates[dates.length - 1] || "";
    label.textContent = shown;
    summaryDate.textContent = shown;
    headlineDate.textContent = shown;
    writeSummary(summary, traces);
    placesBox.hidden = !current.places;
    writePlacesSummary(current, day);
  }

  function writePlacesSummary(current, day) {
    placesSummary.replaceChildren();
    for (const item of current.places || []) {
      const point = latest(item, day);
      if (!point) continue;
      const row = document.createElement("tr");
      for (const text of [item.monitor + " · " + item.place, point.w, "reported", point.date]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      }
      placesSummary.appendChild(row);
    }
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
  function showSources(ids, flag) {
    const body = document.getElementById("panel-body");
    body.replaceChildren();
    if (flag) {
      const note = document.createElement("div");
      note.className = "flag-note";
      const kind = document.createElement("p");
      const strong = document.createElement("strong");
      strong.textContent = "Flag: " + flag[0];
      kind.appendChild(strong);
      const detail = document.createElement("p");
      detail.textContent = flag[1];
      const why = document.createElement("p");
      why.textContent = flag[0] === "revised down"
        ? "The figure is kept as published: its whole range lies below the monitor's running figure just before it."
        : "The figure is kept as published: it does not meet the previous total plus the increments reported since.";
      note.append(kind, detail, why);
      body.appendChild(note);
    }
    for (const id of ids) {
      const r = rowOf.get(id);
      if (r === undefined) continue;
      const item = document.createElement("div");
      item.className = "source";
      const head = document.createElement("p");
      const strong = document.createElement("strong");
      strong.textContent = obs.monitor[r] + " · " + obs.reported_on[r] + " · " + obs.figure[r];
      head.appendChild(strong);
      head.appendChild(document.createTextNode(" (" + obs.kind[r] + ", " + id + ")"));
      item.appendChild(head);
      if (obs.quote[r]) {
        const quote = document.createElement("blockquote");
        quote.textContent = "“" + obs.quote[r] + "”";
        item.appendChild(quote);
      }
      const source = document.createElement("p");
      source.appendChild(sourceLink(r, true));
      item.appendChild(source);
      const jump = document.createElement("a");
      jump.href = "#obs-" + id;
      jump.textContent = "see it in the table";
      jump.addEventListener("click", () => showRow(r));
      item.appendChild(jump);
      body.appendChild(item);
    }
    panel.hidden = false;
  }

  function onClick(event) {
    const point = event.points && event.points[0];
    if (!point || point.customdata === undefined) return;
    const ids = Array.isArray(point.customdata[2]) ? point.customdata[2] : point.customdata;
    const flag = point.customdata.length === 5 ? point.customdata.slice(3) : null;
    if (Array.isArray(ids)) showSources(ids, flag);
  }

  const select = document.getElementById("view-select");
  if (select) select.addEventListener("change", () => { view = Number(select.value); draw(); });
  slider.addEventListener("input", draw);
  spreadToggle.addEventListener("change", draw);
  logToggle.addEventListener("click", () => {
    logScale = !logScale;
    logToggle.setAttribute("aria-pressed", String(logScale));
    logToggle.textContent = logScale ? "Linear scale" : "Log scale";
    draw();
  });
  busyToggle.addEventListener("click", () => {
    busy = !busy;
    busyToggle.setAttribute("aria-pressed", String(busy));
    busyToggle.textContent = busy ? "Show the whole period" : "Zoom to the busy weeks";
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

  // A link to a source's page, only for http(s) addresses; otherwise its title as text.
  function sourceLink(r, newTab) {
    if (!/^https?:\/\//i.test(obs.url[r])) return document.createTextNode(obs.title[r]);
    const link = document.createElement("a");
    link.href = obs.url[r];
    link.rel = "noopener noreferrer";
    if (newTab) link.target = "_blank";
    link.textContent = obs.title[r];
    return link;
  }

  // The table of observations, a page of rows at a time: tens of thousands of rows in the document
  // would take seconds to lay out. Sorting orders every row, not only the page shown.
  const PAGE = 100;
  const table = document.getElementById("observations");
  const tbody = table.tBodies[0];
  const pager = document.getElementById("observations-pager");
  const shownRows = document.getElementById("observations-shown");
  let order = obs.id.map((_, i) => i);
  let first = 0;

  function small(className, text) {
    const element = document.createElement("small");
    if (className) element.className = className;
    element.textContent = text;
    return element;
  }

  function tableRow(r) {
    const row = document.createElement("tr");
    row.id = "obs-" + obs.id[r];
    const cells = [];
    for (let c = 0; c < 9; c++) cells.push(row.appendChild(document.createElement("td")));
    cells[0].textContent = obs.reported_on[r];
    if (obs.period[r]) cells[0].append(document.createElement("br"), small("", "covers " + obs.period[r]));
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = data.colours[obs.monitor[r]] || "#888";
    cells[1].append(swatch, obs.monitor[r]);
    cells[2].textContent = obs.what[r];
    cells[3].textContent = obs.location[r];
    cells[4].textContent = obs.kind[r];
    cells[5].className = "figure";
    cells[5].dataset.sort = obs.low[r];
    cells[5].textContent = obs.figure[r];
    cells[6].className = "quote";
    const quote = document.createElement("span");
    quote.className = "q";
    quote.textContent = obs.quote[r] ? "“" + obs.quote[r] + "”" : "";
    cells[6].appendChild(quote);
    if (obs.note[r]) cells[6].append(document.createElement("br"), small("note", obs.note[r]));
    if (obs.corrected[r]) cells[6].append(document.createElement("br"), small("corrected", "corrected: " + obs.corrected[r]));
    cells[7].appendChild(sourceLink(r, false));
    const id = document.createElement("code");
    id.textContent = obs.id[r];
    cells[8].appendChild(id);
    return row;
  }

  function renderTable() {
    const last = Math.min(first + PAGE, order.length);
    const rows = [];
    for (let k = first; k < last; k++) rows.push(tableRow(order[k]));
    tbody.replaceChildren(...rows);
    pager.hidden = order.length <= PAGE;
    shownRows.textContent = order.length <= PAGE ? order.length.toLocaleString("en") + " figures"
      : "figures " + (first + 1).toLocaleString("en") + "–" + last.toLocaleString("en") + " of " +
        order.length.toLocaleString("en");
    for (const button of pager.querySelectorAll("button")) {
      const back = button.dataset.go === "first" || button.dataset.go === "previous";
      button.disabled = back ? first === 0 : last >= order.length;
    }
  }

  // The page of the table that holds observation r, with its row in view.
  function showRow(r) {
    first = Math.floor(order.indexOf(r) / PAGE) * PAGE;
    renderTable();
  }

  pager.addEventListener("click", (event) => {
    const go = event.target.dataset && event.target.dataset.go;
    if (!go) return;
    const lastPage = Math.max(0, Math.floor((order.length - 1) / PAGE) * PAGE);
    first = { first: 0, previous: Math.max(0, first - PAGE), next: Math.min(lastPage, first + PAGE),
              last: lastPage }[go];
    renderTable();
  });

  // Click a header to sort every row by it, again to reverse; the table goes back to its first page.
  const collator = new Intl.Collator();
  const keys = [(r) => obs.reported_on[r] + " " + obs.period[r], (r) => obs.monitor[r], (r) => obs.what[r],
    (r) => obs.location[r], (r) => obs.kind[r], null, (r) => obs.quote[r], (r) => obs.title[r], (r) => obs.id[r]];
  const headers = table.querySelectorAll("th");
  headers.forEach((th, column) => {
    th.tabIndex = 0;
    const sort = () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const key = keys[column];
      const sign = ascending ? 1 : -1;
      if (key) {
        const texts = obs.id.map((_, r) => key(r));
        order.sort((a, b) => sign * collator.compare(texts[a], texts[b]) || a - b);
      } else {
        order.sort((a, b) => sign * (obs.low[a] - obs.low[b]) || a - b);
      }
      first = 0;
      renderTable();
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
  });
  renderTable();

  function bind(div) {
    if (div.dataset.bound) return;
    div.on("plotly_click", onClick);
    div.dataset.bound = "yes";
  }

  draw();
})();
