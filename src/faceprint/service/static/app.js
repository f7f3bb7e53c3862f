// faceprint web page: plain JS, no build step. Talks to the /v1 API with the key typed in.
// Text from the server is always set with textContent (never innerHTML).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "faceprint.apiKey";
const MAX_SIDE = 300;

function apiKey() {
  return $("api-key").value.trim();
}

function show(el, text, kind) {
  el.textContent = text;
  el.className = "result " + (kind || "info");
}

async function call(method, path, body) {
  const headers = { Accept: "application/json, application/problem+json" };
  const key = apiKey();
  if (key) headers.Authorization = "Bearer " + key;
  let payload = body;
  if (body && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const resp = await fetch(path, { method, headers, body: payload, credentials: "omit", cache: "no-store" });
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    data = null;
  }
  if (!resp.ok) {
    const detail = data && (data.detail || data.title) ? data.detail || data.title : resp.statusText;
    const code = data && data.code ? " [" + data.code + "]" : "";
    const err = new Error(resp.status + ": " + detail + code);
    err.status = resp.status;
    err.code = data && data.code;
    throw err;
  }
  return data;
}

// Draw a photo (EXIF orientation applied, like the server) scaled into a canvas, with boxes.
async function drawFaces(canvas, file, imgW, imgH, faces) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const sx = canvas.width / (imgW || bitmap.width);
  const sy = canvas.height / (imgH || bitmap.height);
  ctx.lineWidth = 3;
  ctx.font = "bold 14px system-ui, sans-serif";
  for (const f of faces) {
    const [x1, y1, x2, y2] = f.bbox;
    ctx.strokeStyle = f.color || "#00e676";
    ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
    if (f.landmarks) {
      ctx.fillStyle = "#ffeb3b";
      for (const [lx, ly] of f.landmarks) {
        ctx.fillRect(lx * sx - 2, ly * sy - 2, 4, 4);
      }
    }
    if (f.label) {
      const w = ctx.measureText(f.label).width + 8;
      const ty = Math.max(0, y1 * sy - 20);
      ctx.fillStyle = f.color || "#00e676";
      ctx.fillRect(x1 * sx, ty, w, 20);
      ctx.fillStyle = "#000";
      ctx.fillText(f.label, x1 * sx + 4, ty + 15);
    }
  }
  bitmap.close();
}

// A small badge with a face's unified quality (0-100) when the server assesses quality
// (FACEPRINT_QUALITY); its tooltip names the components that pull the score down. Faces the
// server did not assess get none.
function qualityBadge(face, what) {
  const q = face && face.quality;
  if (!q) return null;
  const b = document.createElement("span");
  b.className = "quality-badge " + (q.quality >= 70 ? "good" : q.quality >= 40 ? "fair" : "poor");
  b.textContent = (what ? what + ": " : "") + "quality " + Math.round(q.quality);
  b.title = q.reasons && q.reasons.length ? "weakest: " + q.reasons.join(", ") : "no weak component";
  return b;
}

// Show the quality badges of [face, label] pairs in a container (emptied first).
function showQuality(box, pairs) {
  box.replaceChildren(...pairs.map(([f, what]) => qualityBadge(f, what)).filter((b) => b !== null));
}

// " · " and the server's quality flags (faces below its min_quality), or "".
function flagText(r) {
  return r.flags && r.flags.length ? " · low quality: " + r.flags.join("; ") : "";
}

function busy(button, on) {
  button.disabled = on;
}

async function verify() {
  const out = $("verify-result");
  const a = $("verify-a").files[0];
  const b = $("verify-b").files[0];
  if (!a || !b) return show(out, "Choose two photos.", "bad");
  const form = new FormData();
  form.append("image_a", a);
  form.append("image_b", b);
  busy($("verify-btn"), true);
  resetExplain(false);
  $("verify-quality").replaceChildren();
  show(out, "Comparing…");
  try {
    const r = await call("POST", "/v1/verify", form);
    const color = r.match ? "#00e676" : "#ff5252";
    // draw first: the result line is what tells the user (and the browser test) the page is done
    await drawFaces($("verify-canvas-a"), a, r.image_a.width, r.image_a.height, [{ ...r.face_a, color }]);
    await drawFaces($("verify-canvas-b"), b, r.image_b.width, r.image_b.height, [{ ...r.face_b, color }]);
    showQuality($("verify-quality"), [[r.face_a, "A"], [r.face_b, "B"]]);
    show(
      out,
      (r.match ? "Match" : "No match") + " — similarity " + r.score.toFixed(3) + " (threshold " + r.threshold.toFixed(3) + ", " + r.operating_point + ")" + flagText(r),
      r.match ? "ok" : "bad"
    );
    resetExplain(true);
  } catch (e) {
    show(out, e.message, "bad");
  } finally {
    busy($("verify-btn"), false);
  }
}

// The "Explain" view of a verify result: POST the same two photos to /v1/explain and show the
// picture the server drew (both aligned faces, the maps overlaid) with what a map does not say.
function resetExplain(visible) {
  $("explain-box").hidden = !visible;
  $("explain-img").hidden = true;
  $("explain-img").removeAttribute("src");
  $("explain-caption").textContent = "";
  show($("explain-result"), "");
}

async function explain() {
  const out = $("explain-result");
  const a = $("verify-a").files[0];
  const b = $("verify-b").files[0];
  if (!a || !b) return show(out, "Choose two photos and verify them first.", "bad");
  const form = new FormData();
  form.append("image_a", a);
  form.append("image_b", b);
  const method = $("explain-method").value;
  busy($("explain-btn"), true);
  show(out, "Explaining…");
  try {
    const r = await call("POST", "/v1/explain?method=" + encodeURIComponent(method), form);
    const img = $("explain-img");
    img.src = "data:image/png;base64," + r.png;
    await img.decode();
    img.hidden = false;
    const rec = r.reconstructed_score === null ? "" : ", patch cosines reconstruct " + r.reconstructed_score.toFixed(3);
    $("explain-caption").textContent =
      "Red: the similarity comes from there; blue: that region pulls the faces apart. " + r.limits;
    show(out, (r.match ? "Match" : "No match") + " — similarity " + r.score.toFixed(3) + " explained by " + r.method + rec, "ok");
  } catch (e) {
    show(out, e.message, "bad");
  } finally {
    busy($("explain-btn"), false);
  }
}

// The "Morph" view: a suspected morph M next to its two contributors A and B, each compared with M
// through /v1/verify; a morph that matches both is the attack (either person passes as the holder).
async function morphCompare() {
  const out = $("morph-result");
  const a = $("morph-a").files[0];
  const m = $("morph-m").files[0];
  const b = $("morph-b").files[0];
  if (!a || !m || !b) return show(out, "Choose the two people and the suspected morph.", "bad");
  const pair = (x) => {
    const form = new FormData();
    form.append("image_a", m);
    form.append("image_b", x);
    return call("POST", "/v1/verify", form);
  };
  busy($("morph-btn"), true);
  show(out, "Comparing…");
  try {
    const ra = await pair(a);
    const rb = await pair(b);
    const col = (r) => (r.match ? "#00e676" : "#ff5252");
    await drawFaces($("morph-canvas-a"), a, ra.image_b.width, ra.image_b.height, [{ ...ra.face_b, color: col(ra) }]);
    await drawFaces($("morph-canvas-m"), m, ra.image_a.width, ra.image_a.height, [{ ...ra.face_a, color: "#ffd740" }]);
    await drawFaces($("morph-canvas-b"), b, rb.image_b.width, rb.image_b.height, [{ ...rb.face_b, color: col(rb) }]);
    const line = (who, r) => "M vs " + who + ": " + r.score.toFixed(3) + (r.match ? " (match)" : " (no match)");
    const both = ra.match && rb.match;
    show(
      out,
      line("A", ra) + " · " + line("B", rb) + " · threshold " + ra.threshold.toFixed(3) + " (" + ra.operating_point + ")" +
        (both ? " — M matches both: a morphing attack would succeed" : ""),
      both ? "bad" : "ok"
    );
  } catch (e) {
    show(out, e.message, "bad");
  } finally {
    busy($("morph-btn"), false);
  }
}

async function createGallery() {
  const out = $("enrol-result");
  const name = $("enrol-gallery").value.trim();
  if (!name) return show(out, "Enter a gallery name.", "bad");
  try {
    await call("POST", "/v1/galleries", { name });
    show(out, "Gallery “" + name + "” created.", "ok");
  } catch (e) {
    show(out, e.message, "bad");
  }
}

async function enrol() {
  const out = $("enrol-result");
  const gallery = $("enrol-gallery").value.trim();
  const subject = $("enrol-subject").value.trim();
  const files = Array.from($("enrol-files").files);
  if (!gallery || !subject) return show(out, "Enter a gallery and a subject id.", "bad");
  if (!files.length) return show(out, "Choose at least one photo.", "bad");
  const form = new FormData();
  for (const f of files) form.append("images", f);
  busy($("enrol-btn"), true);
  show(out, "Enrolling…");
  $("enrol-quality").replaceChildren();
  try {
    const path = "/v1/galleries/" + encodeURIComponent(gallery) + "/subjects/" + encodeURIComponent(subject) + "/templates";
    const r = await call("POST", path, form);
    const box = $("enrol-canvases");
    box.replaceChildren();
    showQuality($("enrol-quality"), r.faces.map((f, i) => [f, "photo " + (i + 1)]));
    for (let i = 0; i < files.length && i < r.faces.length; i++) {
      const c = document.createElement("canvas");
      box.appendChild(c);
      const f = r.faces[i];
      await drawFaces(c, files[i], f.image_width, f.image_height, [{ ...f, label: r.subject }]);
    }
    show(out, "Enrolled “" + r.subject + "” in “" + r.gallery + "”: " + r.added + " template(s) added.", "ok");
  } catch (e) {
    show(out, e.message, "bad");
  } finally {
    busy($("enrol-btn"), false);
  }
}

async function identify() {
  const out = $("identify-result");
  const list = $("identify-candidates");
  const gallery = $("identify-gallery").value.trim();
  const file = $("identify-file").files[0];
  const k = Math.max(1, Math.min(20, parseInt($("identify-k").value, 10) || 5));
  if (!gallery) return show(out, "Enter a gallery name.", "bad");
  if (!file) return show(out, "Choose a photo.", "bad");
  const form = new FormData();
  form.append("image", file);
  busy($("identify-btn"), true);
  show(out, "Searching…");
  list.replaceChildren();
  $("identify-quality").replaceChildren();
  try {
    const path = "/v1/galleries/" + encodeURIComponent(gallery) + "/identify?top_k=" + k;
    const r = await call("POST", path, form);
    for (const c of r.candidates) {
      const li = document.createElement("li");
      li.textContent = c.subject + " — " + c.score.toFixed(3) + (c.match ? " ✓" : "");
      if (c.match) li.className = "match";
      list.appendChild(li);
    }
    const label = r.identified || "unknown";
    await drawFaces($("identify-canvas"), file, r.width, r.height, [
      { ...r.face, label, color: r.identified ? "#00e676" : "#ff5252" },
    ]);
    showQuality($("identify-quality"), [[r.face, "probe"]]);
    if (r.identified) show(out, "Identified: " + r.identified + flagText(r), "ok");
    else show(out, "Not enrolled: no candidate reaches the threshold " + r.threshold.toFixed(3) + flagText(r), "bad");
  } catch (e) {
    show(out, e.message, "bad");
  } finally {
    busy($("identify-btn"), false);
  }
}

async function status() {
  const el = $("status");
  try {
    const resp = await fetch("/readyz", { cache: "no-store" });
    const r = await resp.json();
    el.textContent = r.ready ? "ready · " + (r.model || "") : "starting…";
    el.className = "status " + (r.ready ? "ready" : "down");
  } catch (e) {
    el.textContent = "offline";
    el.className = "status down";
  }
}

function init() {
  const saved = sessionStorage.getItem(KEY_STORE);
  if (saved) {
    $("api-key").value = saved;
    $("remember-key").checked = true;
  }
  const remember = () => {
    if ($("remember-key").checked) sessionStorage.setItem(KEY_STORE, apiKey());
    else sessionStorage.removeItem(KEY_STORE);
  };
  $("api-key").addEventListener("change", remember);
  $("remember-key").addEventListener("change", remember);
  $("verify-btn").addEventListener("click", verify);
  $("explain-btn").addEventListener("click", explain);
  $("verify-a").addEventListener("change", () => resetExplain(false));
  $("verify-b").addEventListener("change", () => resetExplain(false));
  $("morph-btn").addEventListener("click", morphCompare);
  $("create-gallery-btn").addEventListener("click", createGallery);
  $("enrol-btn").addEventListener("click", enrol);
  $("identify-btn").addEventListener("click", identify);
  status();
}

document.addEventListener("DOMContentLoaded", init);
