// picmatch map: every image of the library as a tile, placed so that similar images sit together.
// One <canvas>, no per-image DOM nodes: tiles come from sprite sheets (many images per JPEG);
// zoomed out, each image is a square of its mean colour written straight into the pixels.
// Served by `picmatch serve` at /map, or opened from disk after `picmatch map --html OUT`.
"use strict";

(() => {
  const TOKEN_KEY = "picmatch.token";
  const STATIC = window.PICMATCH_MAP || null; // set by map-data.js in an exported map
  const GRID = 128; // spatial buckets per side, for hit tests and culling
  const SPRITE_MIN = 9; // device pixels: below, tiles are drawn as colour squares
  const MAX_SPRITES = 6000; // more tiles on screen than this: colour squares
  const BACKGROUND = [24, 27, 34];
  const $ = (id) => document.getElementById(id);
  const ui = {
    stats: $("stats"), folder: $("folder"), fit: $("fit"), stage: $("stage"), canvas: $("canvas"),
    tip: $("tip"), tipImg: $("tip-img"), tipName: $("tip-name"), message: $("message"),
    summary: $("summary"), results: $("results"), explain: $("explain"),
    explainTitle: $("explain-title"), explainImg: $("explain-img"), home: $("home"),
  };
  const ctx = ui.canvas.getContext("2d", { alpha: false });

  let doc = null; // the map document (GET /api/map or map-data.js)
  let n = 0;
  let xs, ys, cells, folderOf, abgr, dimAbgr, cssColour;
  let bucketStart, bucketItems; // points sorted by bucket
  let tileWorld = 0.01; // side of one tile in map units
  const view = { cx: 0.5, cy: 0.5, scale: 500 }; // device px per map unit
  let dpr = 1;
  let sheets = []; // Image per sheet, loaded on first use
  let folderFilter = -1;
  let query = -1; // index of the point searched from
  let results = new Map(); // index -> rank
  let hover = -1;
  let dirty = false;
  let lastDrawMs = 0;
  let lastDrawn = 0; // points in view at the last draw
  let pixels = null; // ImageData reused while the canvas keeps its size
  let readings = [];

  // ---- helpers

  function el(tag, className, text, title) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    if (title) node.title = title;
    return node;
  }

  function showMessage(text) {
    ui.message.textContent = text;
    ui.message.hidden = !text;
  }

  function token() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  }

  async function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    if (token()) headers.set("Authorization", `Bearer ${token()}`);
    let response;
    try {
      response = await fetch(path, { ...init, headers });
    } catch {
      throw new Error("Cannot reach the picmatch server. Is it still running?");
    }
    const body = await response.json().catch(() => null);
    if (response.status === 401) {
      throw new Error("This server needs an access token: open the search page once and enter it.");
    }
    if (!response.ok) throw new Error((body && body.error) || `The server answered ${response.status}.`);
    return body;
  }

  function withToken(url) {
    const t = token();
    return t ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(t)}` : url;
  }

  const thumbUrl = (i, size) =>
    withToken(`/api/images/${encodeURIComponent(doc.ids[i])}/thumbnail?size=${size}`);
  const sheetUrl = (k) =>
    STATIC
      ? `sheets/sheet-${String(k).padStart(4, "0")}.jpg`
      : withToken(`/api/map/sheets/${k}?v=${doc.version}`);

  // ---- data

  function load(document_) {
    doc = document_;
    n = doc.count;
    xs = Float32Array.from(doc.x);
    ys = Float32Array.from(doc.y);
    cells = Int32Array.from(doc.cells);
    folderOf = Int32Array.from(doc.folder);
    abgr = new Uint32Array(n);
    dimAbgr = new Uint32Array(n);
    cssColour = new Array(n);
    const [br, bg, bb] = BACKGROUND;
    for (let i = 0; i < n; i++) {
      const c = doc.colours[i];
      const r = (c >> 16) & 255, g = (c >> 8) & 255, b = c & 255;
      abgr[i] = (255 << 24) | (b << 16) | (g << 8) | r;
      const dr = (r + 3 * br) >> 2, dg = (g + 3 * bg) >> 2, db = (b + 3 * bb) >> 2;
      dimAbgr[i] = (255 << 24) | (db << 16) | (dg << 8) | dr;
      cssColour[i] = `rgb(${r},${g},${b})`;
    }
    buildBuckets();
    tileWorld = Math.min(0.05, Math.max(0.0025, 0.7 / Math.sqrt(Math.max(1, n))));
    sheets = new Array(doc.sheets).fill(null);
    for (const [k, name] of doc.folders.entries()) {
      const option = el("option", "", name);
      option.value = String(k);
      ui.folder.append(option);
    }
    ui.stats.textContent = `${n.toLocaleString()} images · ${doc.model} · drag to pan, scroll to zoom`;
    fit();
    window.picmatchMap.ready = true;
  }

  function bucketOf(x, y) {
    const bx = Math.min(GRID - 1, Math.max(0, Math.floor(x * GRID)));
    const by = Math.min(GRID - 1, Math.max(0, Math.floor(y * GRID)));
    return by * GRID + bx;
  }

  function buildBuckets() {
    const counts = new Int32Array(GRID * GRID + 1);
    const bucket = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      bucket[i] = bucketOf(xs[i], ys[i]);
      counts[bucket[i] + 1]++;
    }
    for (let b = 0; b < GRID * GRID; b++) counts[b + 1] += counts[b];
    bucketStart = counts.slice();
    bucketItems = new Int32Array(n);
    const next = counts.slice();
    for (let i = 0; i < n; i++) bucketItems[next[bucket[i]]++] = i;
  }

  // Calls visit(i) for every point whose bucket meets the map rectangle [x0, x1] x [y0, y1].
  function eachIn(x0, y0, x1, y1, visit) {
    const bx0 = Math.max(0, Math.floor(x0 * GRID)), bx1 = Math.min(GRID - 1, Math.floor(x1 * GRID));
    const by0 = Math.max(0, Math.floor(y0 * GRID)), by1 = Math.min(GRID - 1, Math.floor(y1 * GRID));
    for (let by = by0; by <= by1; by++) {
      for (let bx = bx0; bx <= bx1; bx++) {
        const b = by * GRID + bx;
        for (let k = bucketStart[b]; k < bucketStart[b + 1]; k++) visit(bucketItems[k]);
      }
    }
  }

  // ---- view

  function resize() {
    dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(ui.stage.clientWidth * dpr));
    const h = Math.max(1, Math.round(ui.stage.clientHeight * dpr));
    if (ui.canvas.width !== w || ui.canvas.height !== h) {
      ui.canvas.width = w;
      ui.canvas.height = h;
      pixels = null;
    }
    redraw();
  }

  function fit() {
    view.cx = 0.5;
    view.cy = 0.5;
    view.scale = Math.min(ui.canvas.width, ui.canvas.height) / (1 + 2 * tileWorld);
    redraw();
  }

  const toScreenX = (x) => (x - view.cx) * view.scale + ui.canvas.width / 2;
  const toScreenY = (y) => (y - view.cy) * view.scale + ui.canvas.height / 2;
  const toWorldX = (px) => (px - ui.canvas.width / 2) / view.scale + view.cx;
  const toWorldY = (py) => (py - ui.canvas.height / 2) / view.scale + view.cy;

  function panBy(dx, dy) {
    view.cx -= dx / view.scale;
    view.cy -= dy / view.scale;
    redraw();
  }

  function zoomAt(px, py, factor) {
    const wx = toWorldX(px), wy = toWorldY(py);
    const fitScale = Math.min(ui.canvas.width, ui.canvas.height);
    view.scale = Math.min(fitScale * 400, Math.max(fitScale * 0.25, view.scale * factor));
    view.cx = wx - (px - ui.canvas.width / 2) / view.scale;
    view.cy = wy - (py - ui.canvas.height / 2) / view.scale;
    redraw();
  }

  function redraw() {
    if (dirty || !doc) return;
    dirty = true;
    requestAnimationFrame(() => {
      dirty = false;
      draw();
    });
  }

  // ---- drawing

  function visibleBounds(margin) {
    return [toWorldX(-margin), toWorldY(-margin),
      toWorldX(ui.canvas.width + margin), toWorldY(ui.canvas.height + margin)];
  }

  function draw() {
    const started = performance.now();
    const side = tileWorld * view.scale;
    const [x0, y0, x1, y1] = visibleBounds(side);
    let visible = 0;
    eachIn(x0, y0, x1, y1, () => visible++);
    lastDrawn = visible;
    if (side < SPRITE_MIN || visible > MAX_SPRITES) drawSquares(side, x0, y0, x1, y1);
    else drawTiles(side, x0, y0, x1, y1);
    drawMarks(side);
    lastDrawMs = performance.now() - started;
    if (!window.picmatchMap.firstDrawAt) window.picmatchMap.firstDrawAt = performance.now();
  }

  function drawSquares(side, x0, y0, x1, y1) {
    const w = ui.canvas.width, h = ui.canvas.height;
    if (!pixels) pixels = ctx.createImageData(w, h);
    const out = new Uint32Array(pixels.data.buffer);
    const [r, g, b] = BACKGROUND;
    out.fill((255 << 24) | (b << 16) | (g << 8) | r);
    const size = Math.max(2, Math.round(side));
    const half = size / 2;
    const cx = view.cx, cy = view.cy, scale = view.scale, hw = w / 2, hh = h / 2;
    eachIn(x0, y0, x1, y1, (i) => {
      const left = Math.round((xs[i] - cx) * scale + hw - half);
      const top = Math.round((ys[i] - cy) * scale + hh - half);
      const colour = folderFilter < 0 || folderOf[i] === folderFilter ? abgr[i] : dimAbgr[i];
      const xa = Math.max(0, left), xb = Math.min(w, left + size);
      const ya = Math.max(0, top), yb = Math.min(h, top + size);
      for (let y = ya; y < yb; y++) out.fill(colour, y * w + xa, y * w + xb);
    });
    ctx.putImageData(pixels, 0, 0);
  }

  function drawTiles(side, x0, y0, x1, y1) {
    const per = doc.per_side, cell = doc.cell, perSheet = per * per;
    ctx.fillStyle = `rgb(${BACKGROUND.join(",")})`;
    ctx.fillRect(0, 0, ui.canvas.width, ui.canvas.height);
    ctx.imageSmoothingEnabled = side < cell;
    eachIn(x0, y0, x1, y1, (i) => {
      const left = toScreenX(xs[i]) - side / 2, top = toScreenY(ys[i]) - side / 2;
      const dimmed = folderFilter >= 0 && folderOf[i] !== folderFilter;
      const sheet = dimmed ? null : sheetFor(Math.floor(cells[i] / perSheet));
      if (sheet) {
        const slot = cells[i] % perSheet;
        ctx.drawImage(sheet, (slot % per) * cell, Math.floor(slot / per) * cell, cell, cell,
          left, top, side, side);
      } else {
        ctx.globalAlpha = dimmed ? 0.25 : 1;
        ctx.fillStyle = cssColour[i];
        ctx.fillRect(left, top, side, side);
        ctx.globalAlpha = 1;
      }
    });
  }

  function sheetFor(k) {
    const sheet = sheets[k];
    if (sheet === null) {
      const image = new Image();
      image.decoding = "async";
      image.onload = () => { image.ready = true; redraw(); };
      image.src = sheetUrl(k);
      sheets[k] = image;
      return null;
    }
    return sheet.ready ? sheet : null;
  }

  function mark(i, side, colour, width) {
    const pad = width + 1;
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.strokeRect(toScreenX(xs[i]) - side / 2 - pad, toScreenY(ys[i]) - side / 2 - pad,
      side + 2 * pad, side + 2 * pad);
  }

  function drawMarks(side) {
    const size = Math.max(side, 4 * dpr);
    for (const i of results.keys()) if (i !== query) mark(i, size, "#3ddc97", 2 * dpr);
    if (query >= 0) mark(query, size, "#ff9f1c", 3 * dpr);
    if (hover >= 0) mark(hover, size, "#ffffff", 1.5 * dpr);
  }

  // ---- pointing

  function pointAt(px, py) {
    const wx = toWorldX(px), wy = toWorldY(py);
    const reach = Math.max(tileWorld / 2, (4 * dpr) / view.scale);
    let best = -1, bestDistance = Infinity;
    eachIn(wx - reach, wy - reach, wx + reach, wy + reach, (i) => {
      const dx = Math.abs(xs[i] - wx), dy = Math.abs(ys[i] - wy);
      if (dx <= reach && dy <= reach && dx + dy < bestDistance) {
        best = i;
        bestDistance = dx + dy;
      }
    });
    return best;
  }

  function showTip(i, clientX, clientY) {
    if (i < 0) {
      ui.tip.hidden = true;
      return;
    }
    ui.tipName.textContent = doc.names[i];
    ui.tip.title = doc.folders[folderOf[i]];
    if (!STATIC) {
      const url = thumbUrl(i, 128);
      if (ui.tipImg.dataset.url !== url) {
        ui.tipImg.dataset.url = url;
        ui.tipImg.src = url;
      }
    }
    ui.tipImg.hidden = Boolean(STATIC);
    const box = ui.stage.getBoundingClientRect();
    ui.tip.style.left = `${Math.min(clientX - box.left + 14, box.width - 180)}px`;
    ui.tip.style.top = `${Math.min(clientY - box.top + 14, box.height - 60)}px`;
    ui.tip.hidden = false;
  }

  function wire() {
    let drag = null;
    ui.canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, moved: 0 };
      ui.canvas.setPointerCapture(event.pointerId);
    });
    ui.canvas.addEventListener("pointermove", (event) => {
      if (!doc) return;
      if (drag) {
        const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
        drag.moved += Math.abs(dx) + Math.abs(dy);
        drag.x = event.clientX;
        drag.y = event.clientY;
        panBy(dx * dpr, dy * dpr);
        return;
      }
      const box = ui.canvas.getBoundingClientRect();
      const i = pointAt((event.clientX - box.left) * dpr, (event.clientY - box.top) * dpr);
      if (i !== hover) {
        hover = i;
        redraw();
      }
      showTip(i, event.clientX, event.clientY);
    });
    ui.canvas.addEventListener("pointerup", (event) => {
      const clicked = drag && drag.moved < 5;
      drag = null;
      if (!clicked || !doc) return;
      const box = ui.canvas.getBoundingClientRect();
      const i = pointAt((event.clientX - box.left) * dpr, (event.clientY - box.top) * dpr);
      if (i >= 0) select(i);
    });
    ui.canvas.addEventListener("pointerleave", () => {
      hover = -1;
      ui.tip.hidden = true;
      redraw();
    });
    ui.canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = ui.canvas.getBoundingClientRect();
      const delta = event.deltaMode === 1 ? event.deltaY * 40 : event.deltaY;
      zoomAt((event.clientX - box.left) * dpr, (event.clientY - box.top) * dpr,
        Math.exp(-delta * 0.0015));
    }, { passive: false });
    window.addEventListener("keydown", (event) => {
      if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
      const w = ui.canvas.width / 2, h = ui.canvas.height / 2;
      if (event.key === "0") fit();
      else if (event.key === "+" || event.key === "=") zoomAt(w, h, 1.5);
      else if (event.key === "-") zoomAt(w, h, 1 / 1.5);
    });
    ui.fit.addEventListener("click", fit);
    ui.folder.addEventListener("change", () => {
      folderFilter = Number(ui.folder.value);
      redraw();
    });
    window.addEventListener("resize", resize);
  }

  // ---- searching from a point

  function reading(score) {
    const band = readings.find((r) => score >= r.min);
    return band ? band.words : "";
  }

  async function select(i) {
    query = i;
    results = new Map();
    redraw();
    if (STATIC) {
      ui.summary.textContent = `${doc.names[i]} — ${doc.folders[folderOf[i]]}`;
      return;
    }
    ui.summary.textContent = `Searching for images like ${doc.names[i]}…`;
    showMessage("");
    const body = { id: doc.ids[i], k: 24 };
    if (folderFilter >= 0) body.folders = [doc.folders[folderFilter]];
    try {
      const answer = await api("/api/search", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (query !== i) return;
      showResults(i, answer.hits);
    } catch (error) {
      showMessage(error.message);
      ui.summary.textContent = "";
    }
  }

  function showResults(i, hits) {
    const where = window.picmatchMap.indexOfId;
    results = new Map(hits.map((h, rank) => [where.get(h.id), rank]).filter(([k]) => k !== undefined));
    ui.summary.textContent = `${hits.length} images like ${doc.names[i]}, best first:`;
    ui.results.replaceChildren(...hits.map((hit) => resultItem(i, hit)));
    redraw();
  }

  function resultItem(i, hit) {
    const item = el("li", "result");
    const img = el("img");
    img.src = withToken(`/api/images/${encodeURIComponent(hit.id)}/thumbnail?size=128`);
    img.alt = hit.path.split(/[\\/]/).pop();
    img.loading = "lazy";
    const words = reading(hit.score);
    const text = el("div", "result-text");
    text.append(
      el("span", "name", img.alt, hit.path),
      el("span", "score", `${hit.score.toFixed(3)} · ${words}`, "cosine similarity (1 = identical)"),
    );
    const why = el("button", "why", "why?", "Show which regions of the two images agree");
    why.type = "button";
    why.addEventListener("click", () => explain(doc.ids[i], hit.id, doc.names[i], img.alt));
    item.append(img, text, why);
    return item;
  }

  function explain(a, b, nameA, nameB) {
    ui.explainTitle.textContent = `${nameA} ↔ ${nameB}`;
    ui.explainImg.src = withToken(`/api/explain?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    ui.explain.showModal();
  }

  // ---- start

  window.picmatchMap = {
    ready: false,
    firstDrawAt: 0,
    indexOfId: new Map(),
    count: () => n,
    names: () => doc.names.slice(),
    folders: () => Array.from(folderOf, (k) => doc.folders[k]),
    // Where point i is drawn, in CSS pixels of the page (for tests).
    screenOf: (i) => {
      const box = ui.canvas.getBoundingClientRect();
      return { x: box.left + toScreenX(xs[i]) / dpr, y: box.top + toScreenY(ys[i]) / dpr };
    },
    highlighted: () => ({ query, results: Array.from(results.keys()) }),
    folderNames: () => doc.folders.slice(),
    centre: (i) => {
      view.cx = xs[i];
      view.cy = ys[i];
      draw();
    },
    zoomTo: (factor) => zoomAt(ui.canvas.width / 2, ui.canvas.height / 2, factor),
    fit,
    // Pans `frames` times in a circle of `radius` device pixels, one step per animation frame;
    // returns the draw time and the time between frames, in ms, and the tiles drawn per frame.
    measurePan: (frames, radius) =>
      new Promise((resolve) => {
        const draws = [], gaps = [], drawn = [];
        let last = performance.now(), k = 0;
        const tick = () => {
          const now = performance.now();
          if (k > 0) gaps.push(now - last);
          last = now;
          if (k >= frames) return resolve({ draws, gaps, drawn });
          const a = (2 * Math.PI * k) / 60, b = (2 * Math.PI * (k + 1)) / 60;
          k++;
          view.cx -= (radius * (Math.cos(b) - Math.cos(a))) / view.scale;
          view.cy -= (radius * (Math.sin(b) - Math.sin(a))) / view.scale;
          draw();
          draws.push(lastDrawMs);
          drawn.push(lastDrawn);
          requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      }),
  };

  async function start() {
    wire();
    if (STATIC) {
      ui.home.removeAttribute("href");
    } else {
      api("/api/readings").then((r) => { readings = r.readings; }).catch(() => {});
    }
    try {
      const document_ = STATIC || (await api("/api/map"));
      if (document_.ids) {
        for (const [i, id] of document_.ids.entries()) window.picmatchMap.indexOfId.set(id, i);
      }
      resize();
      load(document_);
    } catch (error) {
      ui.stats.textContent = "No map";
      showMessage(error.message);
    }
  }

  start();
})();
