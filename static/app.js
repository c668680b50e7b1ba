// The drawing page: draw on a canvas (mouse, finger or pen) or pick a photo, send it to
// POST /predict, and show what the model answered and what it saw. While a person draws,
// each finished stroke asks again, so the answer follows the drawing. When the answer is
// wrong, the person can say what they wrote, and POST /corrections keeps it.

// Dark ink on a transparent canvas: the server works out the polarity itself, and the
// page's white "paper" behind the canvas is CSS, not pixels.
const INK = "#14161a";
// On the 280 px canvas a marker-like line; once the server shrinks a digit to MNIST's 20 px
// box it is about 2 px wide, like the pen strokes the model was trained on.
const PEN_WIDTH = 18;
const CANVAS_SIZES = { digit: [280, 280], number: [560, 280] };
// From the server, which says them once for the API and the page: the answer shown, and sent
// with a correction, when the drawing is not a digit; the most digits a number may have.
const NOT_A_DIGIT = document.body.dataset.notADigit;
const MAX_DIGITS = Number(document.body.dataset.maxDigits);
const UNSURE_BELOW = 0.6;
// Pause after the pen lifts before asking: the next stroke of a digit usually starts sooner.
const LIVE_DELAY_MS = 300;
// Relative, so the page also works when the app is mounted below a path prefix.
const PREDICT_URL = "predict";
const CORRECTIONS_URL = "corrections";
// What a person may say they wrote, per mode; the server checks the same.
const LABEL_PATTERNS = { digit: /^[0-9]$/, number: new RegExp(`^[0-9]{1,${MAX_DIGITS}}$`) };
const LABEL_QUESTIONS = { digit: "I wrote the digit:", number: "I wrote the number:" };
const LABEL_HINTS = {
  digit: "Type the one digit you wrote, 0 to 9.",
  number: `Type the number you wrote, up to ${MAX_DIGITS} digits 0 to 9.`,
};

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const canvas = byTestId("canvas");
const pad = byTestId("pad");
const predictButton = byTestId("predict");
const clearButton = byTestId("clear");
const uploadButton = byTestId("upload");
const fileInput = byTestId("file");
const message = byTestId("message");
const result = byTestId("result");
const answerValue = result.querySelector(".answer-value");
const answerNote = result.querySelector(".answer-note");
const details = document.querySelector(".details");
const seenFigure = document.querySelector(".seen");
const seenImage = document.querySelector(".seen-image");
const probabilityList = document.querySelector(".probabilities");
const digitCards = byTestId("digits");
const boxLayer = document.querySelector(".boxes");
const context = canvas.getContext("2d");
const correction = byTestId("correction");
const correctionForm = byTestId("correction-form");
const correctionQuestion = correction.querySelector(".correction-question");
const correctionInput = byTestId("correction-label");
const correctionSave = byTestId("correction-save");
const correctionStatus = byTestId("correction-status");

const percent = new Intl.NumberFormat(undefined, {
  style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
});

function formatPercent(probability) {
  // 0.9996 would round to "100.0%", a certainty no model has.
  return probability > 0.999 ? `>${percent.format(0.999)}` : percent.format(probability);
}

const NOTES = {
  digit: "Draw a digit: the answer appears as you draw.",
  number: "Draw a number: the answer appears as you draw.",
};
const CANVAS_LABELS = {
  digit: "Drawing area. Draw a digit with a mouse, a finger or a pen.",
  number: "Drawing area. Draw a number, digit by digit from left to right, with a mouse, a finger or a pen.",
};

const state = {
  mode: "digit",
  hasInk: false,
  // While the canvas shows an untouched photo, the photo file itself is what gets sent.
  photo: null, // { file, fit: { left, top, scale } | null }
  stroke: null, // { pointerId, rect, last, lastMid }
  request: null, // AbortController of the request in flight
  // What the answer on show was read from: { image: data URI or File, answer, mode } | null
  answered: null,
  liveTimer: 0, // the pending ask after the last stroke
};

// ---------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------

function setUpPen() {
  // Resizing a canvas resets its context, so this runs after every resize.
  context.lineWidth = PEN_WIDTH;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = INK;
  context.fillStyle = INK;
}

function canvasPoint(event, rect) {
  // The canvas is scaled by CSS to fit the screen; map CSS pixels to backing-store pixels.
  return {
    x: ((event.clientX - rect.left) * canvas.width) / rect.width,
    y: ((event.clientY - rect.top) * canvas.height) / rect.height,
  };
}

function dot(point) {
  context.beginPath();
  context.arc(point.x, point.y, PEN_WIDTH / 2, 0, 2 * Math.PI);
  context.fill();
}

function extendStroke(stroke, point) {
  // A quadratic curve between midpoints smooths the corners of sparse pointer samples.
  const mid = { x: (stroke.last.x + point.x) / 2, y: (stroke.last.y + point.y) / 2 };
  context.beginPath();
  context.moveTo(stroke.lastMid.x, stroke.lastMid.y);
  context.quadraticCurveTo(stroke.last.x, stroke.last.y, mid.x, mid.y);
  context.stroke();
  stroke.last = point;
  stroke.lastMid = mid;
}

function startStroke(event) {
  if (state.stroke || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  if (state.photo) state.photo = null; // drawing over a photo: from now on send the canvas
  cancelRequest(); // the drawing changes: an answer to the old one is of no use
  clearBoxes();
  hideCorrection(); // the answer is of the drawing as it was
  result.classList.add("is-stale");
  const rect = canvas.getBoundingClientRect();
  const point = canvasPoint(event, rect);
  state.stroke = { pointerId: event.pointerId, rect, last: point, lastMid: point };
  state.hasInk = true;
  dot(point);
}

function moveStroke(event) {
  const stroke = state.stroke;
  if (!stroke || event.pointerId !== stroke.pointerId) return;
  const samples = event.getCoalescedEvents?.() ?? [];
  for (const sample of samples.length ? samples : [event]) {
    extendStroke(stroke, canvasPoint(sample, stroke.rect));
  }
}

function endStroke(event) {
  const stroke = state.stroke;
  if (!stroke || event.pointerId !== stroke.pointerId) return;
  context.beginPath();
  context.moveTo(stroke.lastMid.x, stroke.lastMid.y);
  context.lineTo(stroke.last.x, stroke.last.y);
  context.stroke();
  state.stroke = null;
  state.liveTimer = setTimeout(() => predict({ live: true }), LIVE_DELAY_MS);
}

function clearCanvas() {
  context.clearRect(0, 0, canvas.width, canvas.height);
  state.hasInk = false;
  state.photo = null;
  state.stroke = null;
}

function setMode(mode) {
  state.mode = mode;
  const [width, height] = CANVAS_SIZES[mode];
  canvas.width = width;
  canvas.height = height;
  setUpPen();
  pad.dataset.mode = mode;
  canvas.setAttribute("aria-label", CANVAS_LABELS[mode]);
  clearAll();
}

// ---------------------------------------------------------------------------
// Photos
// ---------------------------------------------------------------------------

function drawFitted(bitmap) {
  // Scale to fit inside the canvas, centred, keeping the aspect ratio.
  const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const width = bitmap.width * scale;
  const height = bitmap.height * scale;
  const left = (canvas.width - width) / 2;
  const top = (canvas.height - height) / 2;
  context.drawImage(bitmap, left, top, width, height);
  return { left, top, scale };
}

async function usePhoto(file) {
  if (file.type && !file.type.startsWith("image/")) {
    showError(`“${file.name}” is not an image. Choose a photo, for example a PNG or JPEG file.`);
    return;
  }
  clearAll();
  const photo = { file, fit: null };
  state.photo = photo;
  state.hasInk = true;
  try {
    // createImageBitmap needs no object URL, so no blob: source is needed in the CSP.
    const bitmap = await createImageBitmap(file);
    if (state.photo !== photo) return; // cleared or replaced while decoding
    photo.fit = drawFitted(bitmap);
    bitmap.close();
  } catch {
    if (state.photo !== photo) return;
    showMessage("This browser cannot show that photo, but the server may still read it.");
  }
  await predict();
}

function hasFiles(event) {
  return Array.from(event.dataTransfer?.types ?? []).includes("Files");
}

// ---------------------------------------------------------------------------
// Asking the server
// ---------------------------------------------------------------------------

function requestBody() {
  // `mode` tells the server whether to look for one digit or a number; a server that does
  // not know the field ignores it. `image` is what was sent, kept for a correction.
  if (state.photo) {
    const form = new FormData();
    form.append("image", state.photo.file, state.photo.file.name || "photo");
    form.append("mode", state.mode);
    return { body: form, headers: {}, image: state.photo.file };
  }
  const image = canvas.toDataURL("image/png");
  return {
    body: JSON.stringify({ image, mode: state.mode }),
    headers: { "Content-Type": "application/json" },
    image,
  };
}

async function readReply(response) {
  let reply = null;
  try {
    reply = await response.json();
  } catch {
    // Not JSON: a proxy's error page, for example. The status says enough.
  }
  if (!response.ok) {
    const status = `${response.status} ${response.statusText}`.trim();
    throw new Error(reply?.error || `The server could not answer (${status}). Try again in a moment.`);
  }
  if (!reply || typeof reply !== "object") {
    throw new Error("The server's answer could not be read. Try again in a moment.");
  }
  return reply;
}

function cancelRequest() {
  clearTimeout(state.liveTimer);
  state.request?.abort();
  state.request = null;
}

async function predict({ live = false } = {}) {
  if (!state.hasInk) {
    const what = state.mode === "number" ? "a number" : "a digit";
    showMessage(`The canvas is empty: draw ${what} first, then press Predict.`);
    return;
  }
  cancelRequest();
  const controller = new AbortController();
  state.request = controller;
  showMessage("");
  setResultState("pending");
  const { body, headers, image } = requestBody();
  const mode = state.mode;
  try {
    let response;
    try {
      response = await fetch(PREDICT_URL, { method: "POST", body, headers, signal: controller.signal });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error("Could not reach the server. Check the connection and try again.");
    }
    const reply = await readReply(response);
    if (state.request !== controller) return;
    showResult(reply);
    offerCorrection({ image, answer: result.dataset.digit, mode });
  } catch (error) {
    if (error.name === "AbortError" || state.request !== controller) return;
    // While drawing, the page must not scroll away from the canvas to show a message.
    showError(error.message, { scroll: !live });
  } finally {
    if (state.request === controller) state.request = null;
  }
}

// ---------------------------------------------------------------------------
// Showing the answer
// ---------------------------------------------------------------------------

function setResultState(resultState) {
  result.dataset.state = resultState;
  result.setAttribute("aria-busy", String(resultState === "pending"));
  if (resultState === "pending") answerNote.textContent = "Reading…";
}

function showMessage(text, kind = "info", { scroll = true } = {}) {
  message.textContent = text;
  message.dataset.kind = text ? kind : "";
  // On a phone the message can sit below the fold, under the buttons.
  if (text && scroll) message.scrollIntoView({ block: "nearest" });
}

function showError(text, options) {
  resetResult();
  setResultState("error");
  showMessage(text, "error", options);
}

function describeConfidence(confidence, digitCount, notADigit) {
  if (typeof confidence !== "number") return "";
  if (notADigit) {
    const what = digitCount > 1 ? "Some mark is not a digit" : "This does not look like a digit";
    return `${what} (${formatPercent(confidence)} sure): write ${state.mode === "number" ? "digits" : "one digit"}, 0 to 9.`;
  }
  const sure = `${formatPercent(confidence)} sure`;
  const of = digitCount > 1 ? ` of all ${digitCount} digits` : "";
  const hint = confidence < UNSURE_BELOW ? ". Not very sure: try writing larger and clearer" : "";
  return `${sure}${of}${hint}.`;
}

function buildProbabilityRows() {
  for (let digit = 0; digit < 10; digit += 1) {
    const row = document.createElement("li");
    row.className = "probability";
    row.innerHTML = `<span class="probability-digit">${digit}</span>`
      + '<span class="probability-bar" aria-hidden="true"><span class="probability-fill"></span></span>'
      + '<span class="probability-value"></span>';
    probabilityList.append(row);
  }
}

function showProbabilities(probabilities) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  probabilityList.querySelectorAll(".probability").forEach((row, digit) => {
    const probability = Number(probabilities[digit]) || 0;
    // A custom property set through the CSSOM: allowed by a CSP without 'unsafe-inline'.
    row.style.setProperty("--probability", String(probability));
    row.querySelector(".probability-value").textContent = formatPercent(probability);
    row.classList.toggle("is-best", digit === best);
  });
}

function digitCard(entry) {
  const card = document.createElement("li");
  card.className = "digit-card";
  const label = entry.digit ?? "?";
  if (entry.preview) {
    const image = document.createElement("img");
    image.className = "digit-card-image";
    image.width = 28;
    image.height = 28;
    image.alt = `What the model saw for the digit it read as ${label}`;
    image.src = entry.preview;
    card.append(image);
  }
  const value = document.createElement("span");
  value.className = "digit-card-value";
  value.textContent = label;
  const confidence = document.createElement("span");
  confidence.className = "digit-card-confidence";
  confidence.textContent = typeof entry.confidence === "number" ? formatPercent(entry.confidence) : "";
  card.append(value, confidence);
  return card;
}

function showBoxes(digits) {
  // Boxes are in the pixels of the image sent; a photo was scaled onto the canvas.
  const fit = state.photo ? state.photo.fit : { left: 0, top: 0, scale: 1 };
  if (!fit) return;
  for (const entry of digits) {
    const box = entry.box;
    if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) continue;
    const [x0, y0, x1, y1] = box;
    const outline = document.createElement("span");
    outline.className = "box";
    outline.style.setProperty("--left", String((fit.left + x0 * fit.scale) / canvas.width));
    outline.style.setProperty("--top", String((fit.top + y0 * fit.scale) / canvas.height));
    outline.style.setProperty("--width", String(((x1 - x0) * fit.scale) / canvas.width));
    outline.style.setProperty("--height", String(((y1 - y0) * fit.scale) / canvas.height));
    outline.dataset.digit = entry.digit ?? "?";
    boxLayer.append(outline);
  }
}

function clearBoxes() {
  boxLayer.replaceChildren();
}

function showResult(reply) {
  const digits = Array.isArray(reply.digits) ? reply.digits : [];
  const answer = reply.not_a_digit ? NOT_A_DIGIT : (reply.number ?? (reply.digit ?? ""));
  result.dataset.digit = String(answer);
  result.classList.remove("is-stale");
  answerValue.textContent = String(answer) || "?";
  answerNote.textContent = describeConfidence(reply.confidence, digits.length, reply.not_a_digit);
  result.classList.toggle("is-long", String(answer).length > 3);
  result.classList.toggle("is-not-digit", Boolean(reply.not_a_digit));

  const probabilities = Array.isArray(reply.probabilities) && reply.probabilities.length === 10
    ? reply.probabilities : null;
  if (probabilities) showProbabilities(probabilities);
  probabilityList.hidden = !probabilities;
  document.getElementById("probabilities-title").hidden = !probabilities;
  if (reply.preview) seenImage.src = reply.preview;
  seenFigure.hidden = !reply.preview;
  details.hidden = !probabilities && !reply.preview;

  digitCards.replaceChildren(...(digits.length > 1 ? digits.map(digitCard) : []));
  digitCards.hidden = digits.length <= 1;
  clearBoxes();
  // Around a single digit a box says nothing new; around the parts of a number it shows
  // how the drawing was split.
  if (state.mode === "number" || digits.length > 1) showBoxes(digits);
  setResultState("done");
}

function resetResult() {
  hideCorrection();
  result.dataset.digit = "";
  result.classList.remove("is-stale", "is-long", "is-not-digit");
  answerValue.textContent = "?";
  answerNote.textContent = NOTES[state.mode];
  details.hidden = true;
  seenImage.removeAttribute("src");
  digitCards.replaceChildren();
  digitCards.hidden = true;
  clearBoxes();
  setResultState("empty");
}

function clearAll() {
  cancelRequest();
  clearCanvas();
  resetResult();
  showMessage("");
}

// ---------------------------------------------------------------------------
// Correcting a wrong answer
// ---------------------------------------------------------------------------

function offerCorrection(answered) {
  state.answered = answered.answer ? answered : null;
  correction.hidden = !state.answered;
  if (!state.answered) return;
  correctionQuestion.textContent = LABEL_QUESTIONS[answered.mode];
  correctionInput.maxLength = answered.mode === "digit" ? 1 : MAX_DIGITS;
  correctionInput.value = "";
  correctionInput.removeAttribute("aria-invalid");
  showCorrectionStatus("");
}

function hideCorrection() {
  state.answered = null;
  correction.hidden = true;
}

function showCorrectionStatus(text, kind = "info") {
  correctionStatus.textContent = text;
  correctionStatus.dataset.kind = text ? kind : "";
}

function asDataUri(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("The photo could not be read again. Choose it once more."));
    reader.readAsDataURL(file);
  });
}

async function saveCorrection(event) {
  event.preventDefault();
  const answered = state.answered;
  if (!answered) return;
  const label = correctionInput.value.trim();
  let problem = "";
  if (!LABEL_PATTERNS[answered.mode].test(label)) {
    problem = LABEL_HINTS[answered.mode];
  } else if (label === answered.answer) {
    problem = `It read ${label}, so there is nothing to correct. Type what you wrote if it was something else.`;
  }
  if (problem) {
    correctionInput.setAttribute("aria-invalid", "true");
    showCorrectionStatus(problem, "error");
    correctionInput.focus();
    return;
  }
  correctionInput.removeAttribute("aria-invalid");
  correctionSave.disabled = true;
  showCorrectionStatus("Saving…");
  try {
    const image = typeof answered.image === "string" ? answered.image : await asDataUri(answered.image);
    let response;
    try {
      response = await fetch(CORRECTIONS_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ image, label, answer: answered.answer, mode: answered.mode }),
      });
    } catch {
      throw new Error("Could not reach the server. Check the connection and try again.");
    }
    const reply = await readReply(response);
    if (state.answered !== answered) return; // the drawing changed meanwhile
    correction.dataset.saved = String(reply.id);
    showCorrectionStatus(response.status === 201
      ? `Saved: ${label}. Thank you, the model will learn from it.`
      : `Already saved: ${label}. Thank you.`, "done");
  } catch (error) {
    if (state.answered === answered) showCorrectionStatus(error.message, "error");
  } finally {
    correctionSave.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------

function isOwnKeyTarget(element) {
  // Enter on a button, link, file picker, summary or in a form already means "activate
  // this" or "submit"; leave it be.
  return Boolean(element.closest?.("button, a[href], input[type=file], textarea, select, summary, form, [contenteditable]"));
}

canvas.addEventListener("pointerdown", startStroke);
canvas.addEventListener("pointermove", moveStroke);
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
  canvas.addEventListener(type, endStroke);
}

predictButton.addEventListener("click", () => predict());
correctionForm.addEventListener("submit", saveCorrection);
clearButton.addEventListener("click", clearAll);
uploadButton.addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  fileInput.value = ""; // so that choosing the same file again still fires "change"
  if (file) usePhoto(file);
});

for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", () => {
    if (radio.checked) setMode(radio.value);
  });
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
  if (event.key === "Escape") {
    if (correction.contains(event.target)) return; // typing a correction: not a reason to wipe
    clearAll();
  } else if (event.key === "Enter" && !event.repeat && !isOwnKeyTarget(event.target)) {
    event.preventDefault();
    predict();
  }
});

pad.addEventListener("dragover", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  pad.classList.add("is-dropping");
});
pad.addEventListener("dragleave", (event) => {
  if (!pad.contains(event.relatedTarget)) pad.classList.remove("is-dropping");
});
pad.addEventListener("drop", (event) => {
  event.preventDefault();
  pad.classList.remove("is-dropping");
  const file = event.dataTransfer?.files[0];
  if (file) usePhoto(file);
});
// A photo dropped beside the drawing area would otherwise replace the page with the photo.
document.addEventListener("dragover", (event) => {
  if (hasFiles(event) && !pad.contains(event.target)) {
    event.preventDefault();
    event.dataTransfer.dropEffect = "none";
  }
});
document.addEventListener("drop", (event) => {
  if (!pad.contains(event.target)) event.preventDefault();
});

buildProbabilityRows();
setMode(document.querySelector('input[name="mode"]:checked')?.value ?? "digit");
