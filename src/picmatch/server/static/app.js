// picmatch web page: pick, drop or paste an image; see the most similar ones in the library.
// No dependencies and no build step. Talks only to the JSON API of the server that served it.
"use strict";

(() => {
  const TOKEN_KEY = "picmatch.token";
  const MAX_TOKEN_PROMPTS = 3;
  const $ = (id) => document.getElementById(id);
  const ui = {
    stats: $("stats"),
    drop: $("drop"),
    file: $("file"),
    preview: $("preview"),
    k: $("k"),
    minScore: $("min-score"),
    minScoreValue: $("min-score-value"),
    controls: $("controls"),
    textForm: $("text-form"),
    text: $("text"),
    queryLabel: $("query-label"),
    message: $("message"),
    summary: $("summary"),
    results: $("results"),
    dialog: $("token-dialog"),
    tokenPrompt: $("token-prompt"),
    tokenInput: $("token-input"),
    tokenCancel: $("token-cancel"),
    explain: $("explain"),
    explainTitle: $("explain-title"),
    explainImg: $("explain-img"),
  };

  let library = null; // the answer of GET /api/library
  let current = null; // the query on screen: {file}, {id, path} or {text}
  let generation = 0; // answers to superseded searches are dropped
  let previewUrl = null; // an object URL to revoke when the preview changes
  let tokenRequest = null; // one token prompt at a time
  let readings = []; // plain words for score ranges (GET /api/readings)
  let explainUrl = null; // the heat map on screen, an object URL

  // ---- helpers

  function el(tag, className, text, title) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    if (title) node.title = title;
    return node;
  }

  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
  const basename = (path) => path.split(/[\\/]/).pop() || path;
  const dirname = (path) => path.slice(0, Math.max(0, path.length - basename(path).length - 1));
  const shortFolder = (path) => {
    const parts = dirname(path).split(/[\\/]/);
    return parts.length > 3 ? `…/${parts.slice(-2).join("/")}` : dirname(path);
  };
  const megabytes = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;

  function showMessage(text) {
    ui.message.textContent = text;
    ui.message.hidden = !text;
  }

  // ---- access token (asked once, kept in localStorage)

  function storedToken() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  }

  function saveToken(token) {
    try {
      localStorage.setItem(TOKEN_KEY, token);
    } catch {
      // storage disabled: the token lasts until the page is closed
    }
  }

  function askForToken(refused) {
    if (tokenRequest) return tokenRequest;
    tokenRequest = new Promise((resolve) => {
      ui.tokenPrompt.textContent = refused
        ? "That token was refused. Enter the access token:"
        : "This server needs an access token.";
      ui.tokenInput.value = "";
      ui.dialog.returnValue = "";
      ui.dialog.addEventListener(
        "close",
        () => {
          const token = ui.dialog.returnValue === "ok" ? ui.tokenInput.value.trim() : "";
          if (token) saveToken(token);
          tokenRequest = null;
          resolve(token);
        },
        { once: true },
      );
      ui.dialog.showModal();
    });
    return tokenRequest;
  }

  // ---- API

  async function api(path, init = {}, prompts = 0) {
    const headers = new Headers(init.headers || {});
    const token = storedToken();
    if (token) headers.set("Authorization", `Bearer ${token}`);
    let response;
    try {
      response = await fetch(path, { ...init, headers });
    } catch {
      throw new Error("Cannot reach the picmatch server. Is it still running?");
    }
    if (response.status === 401 && prompts < MAX_TOKEN_PROMPTS) {
      if (await askForToken(Boolean(token))) return api(path, init, prompts + 1);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error((body && body.error) || `The server answered ${response.status}.`);
    }
    return body;
  }

  function imageUrl(id, what, size) {
    const params = new URLSearchParams();
    if (size) params.set("size", String(size));
    const token = storedToken(); // <img> cannot send headers
    if (token) params.set("token", token);
    const query = params.toString();
    return `/api/images/${encodeURIComponent(id)}/${what}${query ? `?${query}` : ""}`;
  }

  // ---- library stats

  async function loadLibrary() {
    try {
      library = await api("/api/library");
    } catch (error) {
      ui.stats.textContent = "Library unavailable";
      showMessage(error.message);
      return;
    }
    const roots = library.roots.length ? library.roots.join(", ") : "no folders indexed yet";
    ui.stats.textContent = `${plural(library.images, "image")} · ${library.model} · ${roots}`;
    ui.stats.title = `library: ${library.path}\nstore: ${library.store}`;
    api("/api/readings").then((r) => { readings = r.readings; }).catch(() => {});
  }

  // ---- searching

  function options() {
    const k = Math.min(1000, Math.max(1, Math.round(Number(ui.k.value) || 24)));
    ui.k.value = String(k);
    return { k, minScore: Number(ui.minScore.value) };
  }

  function requestFor(query) {
    const { k, minScore } = options();
    if (query.file) {
      const form = new FormData();
      form.append("image", query.file, query.file.name || "pasted-image");
      form.append("k", String(k));
      if (minScore > 0) form.append("min_score", String(minScore));
      return { method: "POST", body: form };
    }
    const body = query.text ? { text: query.text, k } : { id: query.id, k };
    if (minScore > 0) body.min_score = minScore;
    const textModel = query.text && textModelFor(library);
    if (textModel) body.model = textModel;
    return {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
  }

  // Text queries go to the library's first model that reads text, when its default cannot.
  function textModelFor(lib) {
    const able = (lib && lib.text_models) || [];
    return able.length && !able.includes(lib.model) ? able[0] : null;
  }

  function searchFromText() {
    const text = ui.text.value.trim();
    if (!text) return;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    ui.preview.hidden = true;
    ui.queryLabel.textContent = `Query: “${text}”`;
    search({ text });
  }

  async function search(query) {
    current = query;
    const mine = ++generation;
    showMessage("");
    document.body.classList.add("busy");
    ui.summary.textContent = "Searching…";
    try {
      const result = await api("/api/search", requestFor(query));
      if (mine === generation) render(result);
    } catch (error) {
      if (mine !== generation) return;
      showMessage(error.message);
      ui.summary.textContent = "";
      ui.results.replaceChildren();
    } finally {
      if (mine === generation) document.body.classList.remove("busy");
    }
  }

  function render(result) {
    const hits = result.hits;
    if (hits.length) {
      const took = Math.max(1, Math.round(result.took_ms));
      ui.summary.textContent = `${plural(hits.length, "result")} in ${took} ms. Click one to search from it.`;
    } else if (Number(ui.minScore.value) > 0) {
      ui.summary.textContent = "No results at or above the minimum score.";
    } else {
      ui.summary.textContent = "No results: the library has no images yet.";
    }
    ui.results.replaceChildren(...hits.map(card));
  }

  function card(hit) {
    const item = el("li", "hit");
    item.dataset.id = hit.id;
    const button = el("button", "", undefined, `Search for images like ${hit.path}`);
    button.type = "button";
    const img = el("img");
    img.src = imageUrl(hit.id, "thumbnail", 256);
    img.alt = basename(hit.path);
    img.loading = "lazy";
    img.decoding = "async";
    button.append(img);
    button.addEventListener("click", () => searchFromHit(hit));

    const open = el("a", "", `${hit.width} × ${hit.height} · open`);
    open.href = imageUrl(hit.id, "file");
    open.target = "_blank";
    open.rel = "noopener noreferrer";
    const meta = el("div", "meta");
    // Words and heat maps explain image-to-image scores of the default model only.
    const byImage = current && !current.text;
    const band = byImage && readings.find((r) => hit.score >= r.min);
    const why = el("button", "why", "why?", "Show which regions of the two images agree most");
    why.type = "button";
    why.hidden = !byImage;
    why.addEventListener("click", () => explain(hit));
    meta.append(
      el("span", "score", hit.score.toFixed(3), "cosine similarity (1 = identical)"),
      el("span", "reading", band ? band.words : ""),
      why,
      el("span", "name", basename(hit.path), hit.path),
      el("span", "folder", shortFolder(hit.path), hit.path),
      open,
    );
    item.append(button, meta);
    return item;
  }

  // A side-by-side heat map of the query and a result, from the model's last feature map.
  async function explain(hit) {
    const query = current;
    const init = requestFor(query);
    ui.explainTitle.textContent = `Query ↔ ${basename(hit.path)}: brighter = more alike`;
    ui.explainImg.removeAttribute("src");
    ui.explain.showModal();
    try {
      const headers = new Headers(init.headers || {});
      if (storedToken()) headers.set("Authorization", `Bearer ${storedToken()}`);
      const response = await fetch(`/api/explain?b=${encodeURIComponent(hit.id)}`, { ...init, headers });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        throw new Error((body && body.error) || `The server answered ${response.status}.`);
      }
      if (explainUrl) URL.revokeObjectURL(explainUrl);
      explainUrl = URL.createObjectURL(await response.blob());
      ui.explainImg.src = explainUrl;
    } catch (error) {
      ui.explainTitle.textContent = error.message;
    }
  }

  function setPreview(url, isObjectUrl) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = isObjectUrl ? url : null;
    ui.preview.src = url;
    ui.preview.hidden = false;
  }

  function searchFromHit(hit) {
    setPreview(imageUrl(hit.id, "thumbnail", 512), false);
    ui.queryLabel.textContent = `Query: ${hit.path}`;
    window.scrollTo({ top: 0, behavior: "smooth" });
    search({ id: hit.id, path: hit.path });
  }

  function searchFromFile(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      showMessage(`${file.name || "That file"} is not an image. Choose a JPEG, PNG, WebP, …`);
      return;
    }
    if (library && file.size > library.max_upload_bytes) {
      showMessage(
        `${file.name} is ${megabytes(file.size)}; this server takes images up to ` +
          `${megabytes(library.max_upload_bytes)}.`,
      );
      return;
    }
    setPreview(URL.createObjectURL(file), true);
    ui.queryLabel.textContent = `Query: ${file.name || "pasted image"}`;
    search({ file });
  }

  // ---- wiring

  function imageFromClipboard(event) {
    const items = event.clipboardData ? Array.from(event.clipboardData.items) : [];
    const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
    return item ? item.getAsFile() : null;
  }

  function wire() {
    ui.file.addEventListener("change", () => {
      const file = ui.file.files && ui.file.files[0];
      ui.file.value = ""; // picking the same file again still searches
      searchFromFile(file);
    });
    ui.drop.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        ui.file.click();
      }
    });
    // Drops anywhere on the page count; the browser must not navigate to the dropped file.
    window.addEventListener("dragover", (event) => {
      event.preventDefault();
      ui.drop.classList.add("over");
    });
    window.addEventListener("dragleave", (event) => {
      if (!event.relatedTarget) ui.drop.classList.remove("over");
    });
    window.addEventListener("drop", (event) => {
      event.preventDefault();
      ui.drop.classList.remove("over");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) searchFromFile(file);
      else showMessage("Drop an image file (from your files, not a link).");
    });
    document.addEventListener("paste", (event) => {
      const file = imageFromClipboard(event);
      if (file) {
        event.preventDefault();
        searchFromFile(file);
      }
    });
    ui.minScore.addEventListener("input", () => {
      ui.minScoreValue.value = Number(ui.minScore.value).toFixed(2);
    });
    for (const control of [ui.k, ui.minScore]) {
      control.addEventListener("change", () => current && search(current));
    }
    ui.controls.addEventListener("submit", (event) => event.preventDefault());
    ui.textForm.addEventListener("submit", (event) => {
      event.preventDefault();
      searchFromText();
    });
    ui.tokenCancel.addEventListener("click", () => ui.dialog.close("cancel"));
  }

  wire();
  loadLibrary();
})();
