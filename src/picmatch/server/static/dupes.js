// picmatch duplicates page: groups side by side, pick the keeper, untick members, move, undo.
// No dependencies and no build step. Talks only to the JSON API of the server that served it.
"use strict";

(() => {
  const TOKEN_KEY = "picmatch.token";
  const PAGE = 30;
  const $ = (id) => document.getElementById(id);
  const ui = {
    stats: $("stats"), find: $("find"), tier: $("tier"), folder: $("folder"), rule: $("rule"),
    message: $("message"), summary: $("summary"), apply: $("apply"), moveTo: $("move-to"),
    moveButton: $("move-button"), done: $("done"), doneText: $("done-text"),
    undo: $("undo-button"), groups: $("groups"), more: $("more"), dialog: $("token-dialog"),
    tokenPrompt: $("token-prompt"), tokenInput: $("token-input"), tokenCancel: $("token-cancel"),
  };
  let library = null;
  let loaded = 0;
  let total = 0;
  let lastManifest = null;
  let tokenRequest = null;

  const el = (tag, className, text, title) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    if (title) node.title = title;
    return node;
  };
  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
  const basename = (path) => path.split(/[\\/]/).pop() || path;
  const size = (bytes) =>
    bytes < 1048576 ? `${(bytes / 1024).toFixed(0)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;

  function showMessage(text) {
    ui.message.textContent = text;
    ui.message.hidden = !text;
  }

  // ---- token and API (the same token the search page keeps)

  function storedToken() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
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
      ui.dialog.addEventListener("close", () => {
        const token = ui.dialog.returnValue === "ok" ? ui.tokenInput.value.trim() : "";
        if (token) {
          try {
            localStorage.setItem(TOKEN_KEY, token);
          } catch {
            // storage disabled
          }
        }
        tokenRequest = null;
        resolve(token);
      }, { once: true });
      ui.dialog.showModal();
    });
    return tokenRequest;
  }

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
    if (response.status === 401 && prompts < 3 && (await askForToken(Boolean(token)))) {
      return api(path, init, prompts + 1);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error((body && body.error) || `The server answered ${response.status}.`);
    return body;
  }

  const post = (path, body) =>
    api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  function thumb(id) {
    const params = new URLSearchParams({ size: "256" });
    const token = storedToken();
    if (token) params.set("token", token);
    return `/api/images/${encodeURIComponent(id)}/thumbnail?${params}`;
  }

  // ---- groups

  function query(offset) {
    const params = new URLSearchParams({ tier: ui.tier.value, offset: String(offset), limit: String(PAGE) });
    if (ui.folder.value.trim()) params.set("folder", ui.folder.value.trim());
    return `/api/duplicates?${params}`;
  }

  async function findGroups(append) {
    showMessage("");
    document.body.classList.add("busy");
    ui.summary.textContent = "Looking for duplicates…";
    try {
      const body = await api(query(append ? loaded : 0));
      if (!append) ui.groups.replaceChildren();
      ui.rule.textContent = `${body.rule}. ${body.keeper_rule}.`;
      body.groups.forEach((group, k) => ui.groups.append(groupCard(group, loaded + k + 1)));
      loaded = append ? loaded + body.groups.length : body.groups.length;
      total = body.total_groups;
      ui.more.hidden = loaded >= total;
      ui.apply.hidden = total === 0;
      ui.summary.textContent = total
        ? `${plural(total, "group")}, ${body.redundant.toLocaleString()} extra ${body.redundant === 1 ? "copy" : "copies"} among ${plural(body.images, "image")} (${body.seconds.toFixed(2)} s).`
        : `No duplicates among ${plural(body.images, "image")} at this tier.`;
      updateMoveButton();
    } catch (error) {
      showMessage(error.message);
      ui.summary.textContent = "";
    } finally {
      document.body.classList.remove("busy");
    }
  }

  function groupCard(group, number) {
    const item = el("li", "group");
    item.append(el("h2", "", `Group ${number} · ${plural(group.members.length, "image")}`));
    const row = el("div", "members");
    for (const member of group.members) row.append(memberCard(member, `group-${number}`));
    item.append(row);
    return item;
  }

  function memberCard(m, name) {
    const card = el("div", "member");
    card.dataset.id = m.id;
    const img = el("img");
    img.src = thumb(m.id);
    img.alt = basename(m.path);
    img.loading = "lazy";
    const keep = el("input");
    keep.type = "radio";
    keep.name = name;
    keep.className = "keep";
    keep.checked = m.keeper;
    const move = el("input");
    move.type = "checkbox";
    move.className = "move";
    move.checked = !m.keeper && !m.protected;
    move.disabled = m.keeper || m.protected;
    keep.addEventListener("change", () => chooseKeeper(card));
    move.addEventListener("change", updateMoveButton);
    const keepLabel = el("label", "pick", undefined, "keep this one");
    keepLabel.append(keep, " keep");
    const moveLabel = el("label", "pick", undefined, "move this one to the review folder");
    moveLabel.append(move, " move");
    const dist = m.distance === null ? "–" : String(m.distance);
    card.append(
      img,
      el("span", "name", basename(m.path), m.path),
      el("span", "facts", `${m.width} × ${m.height} · ${size(m.size)}`),
      el("span", "evidence", m.keeper ? "keeper" : `score ${m.score.toFixed(3)} · hash ${dist}`,
        "embedding score against the keeper (1 = identical); hash: differing bits of 64"),
      el("span", "picks"),
    );
    card.lastChild.append(keepLabel, moveLabel);
    if (m.protected) card.classList.add("protected");
    card.classList.toggle("is-keeper", m.keeper);
    return card;
  }

  function chooseKeeper(card) {
    for (const other of card.parentElement.children) {
      const isKeeper = other === card;
      const move = other.querySelector(".move");
      other.classList.toggle("is-keeper", isKeeper);
      move.disabled = isKeeper || other.classList.contains("protected");
      move.checked = !move.disabled;
    }
    updateMoveButton();
  }

  function ticked() {
    return [...ui.groups.querySelectorAll(".move:checked")].map((box) => box.closest(".member").dataset.id);
  }

  function updateMoveButton() {
    const n = ticked().length;
    ui.moveButton.textContent = `Move ${plural(n, "file")}`;
    ui.moveButton.disabled = n === 0;
  }

  async function moveTicked() {
    const ids = ticked();
    if (!ids.length) return;
    showMessage("");
    try {
      const result = await post("/api/duplicates/move", { ids, move_to: ui.moveTo.value.trim() });
      lastManifest = result.manifest;
      const skipped = result.skipped.length ? `, skipped ${result.skipped.length}` : "";
      ui.doneText.textContent = `Moved ${plural(result.done.length, "file")} to ${ui.moveTo.value.trim()}${skipped}.`;
      ui.done.hidden = !lastManifest;
      ui.undo.hidden = !lastManifest;
      await findGroups(false);
    } catch (error) {
      showMessage(error.message);
    }
  }

  async function undoLast() {
    if (!lastManifest) return;
    try {
      const result = await post("/api/duplicates/undo", { manifest: lastManifest });
      ui.doneText.textContent = `Undone: ${plural(result.done.length, "file")} back in place.`;
      lastManifest = null;
      ui.undo.hidden = true;
      await findGroups(false);
    } catch (error) {
      showMessage(error.message);
    }
  }

  async function start() {
    try {
      library = await api("/api/library");
      ui.stats.textContent = `${plural(library.images, "image")} · ${library.roots.join(", ") || "no folders indexed yet"}`;
      const root = library.allowed_roots[0] || library.roots[0];
      if (root) ui.moveTo.value = `${root.replace(/[\\/]$/, "")}/picmatch-review`;
    } catch (error) {
      ui.stats.textContent = "Library unavailable";
      showMessage(error.message);
      return;
    }
    await findGroups(false);
  }

  ui.find.addEventListener("submit", (event) => {
    event.preventDefault();
    findGroups(false);
  });
  ui.apply.addEventListener("submit", (event) => {
    event.preventDefault();
    moveTicked();
  });
  ui.more.addEventListener("click", () => findGroups(true));
  ui.undo.addEventListener("click", undoLast);
  ui.tokenCancel.addEventListener("click", () => ui.dialog.close("cancel"));
  start();
})();
