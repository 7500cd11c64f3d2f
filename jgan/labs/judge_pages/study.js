// The study page: one image at a time, "real" / "fake" by button or key (R / F), progress count.
// The evaluator id lives in localStorage (one per browser profile and study), so a reloaded page
// continues where the evaluator stopped; the server decides which image comes next.
'use strict';

const base = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
const storageKey = 'jgan-judge:' + base;
const $ = (id) => document.getElementById(id);
const state = { evaluator: localStorage.getItem(storageKey), current: null, shownAt: 0, ready: false, busy: false };
// What the page has shown and what the server acknowledged (read by the browser tests).
window.jgan = { shown: [], acked: [] };

function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function setReady(ready) {
  state.ready = ready;
  $('real').disabled = $('fake').disabled = !ready;
  document.body.dataset.ready = ready ? '1' : '0';
}

async function call(path, body) {
  const options = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  const response = await fetch(base + path, options);
  let data = {};
  try { data = await response.json(); } catch (e) { /* an empty or non-JSON body */ }
  return { status: response.status, data };
}

async function ensureEvaluator() {
  if (state.evaluator) return;
  const name = new URLSearchParams(location.search).get('name') || '';
  const r = await call('api/evaluators', { name: name.slice(0, 64) });
  if (r.status !== 200) throw new Error(r.data.error || 'HTTP ' + r.status);
  state.evaluator = r.data.evaluator;
  localStorage.setItem(storageKey, state.evaluator);
}

function show(next) {
  state.current = next;
  if (next.mode === 'time') $('timing').textContent = 'Each image is shown only briefly, then hidden: answer then.';
  document.body.dataset.position = String(next.position);
  $('progress').textContent = `Image ${next.position + 1} of ${next.total}`;
  const img = $('image');
  img.width = next.width * next.scale;
  img.height = next.height * next.scale;
  $('mask').style.width = img.width + 'px';
  $('mask').style.height = img.height + 'px';
  img.onload = () => {
    $('mask').hidden = true;
    img.hidden = false;
    state.shownAt = performance.now();
    window.jgan.shown.push(next.image);
    document.body.dataset.image = next.image;
    setStatus('');
    setReady(true);
    if (next.exposure_ms !== null) {
      setTimeout(() => {
        if (state.current === next) { img.hidden = true; $('mask').hidden = false; }
      }, next.exposure_ms);
    }
  };
  img.src = base + 'img/' + encodeURIComponent(next.image);
}

function finished(next) {
  state.current = null;
  $('progress').textContent = `Done: ${next.total} of ${next.total}`;
  $('image').hidden = true;
  $('mask').hidden = true;
  $('buttons').hidden = true;
  document.body.dataset.done = '1';
  setStatus('Thank you! All your answers are saved.');
}

// Asks the server where this evaluator stands and shows that image; retries while the server is away.
async function advance() {
  setReady(false);
  try {
    await ensureEvaluator();
    const r = await call('api/next?evaluator=' + encodeURIComponent(state.evaluator));
    if (r.status === 404) {  // an evaluator this study does not know (e.g. a new study at the same URL)
      localStorage.removeItem(storageKey);
      state.evaluator = null;
      return advance();
    }
    if (r.status !== 200) throw new Error(r.data.error || 'HTTP ' + r.status);
    if (r.data.done) finished(r.data); else show(r.data);
  } catch (e) {
    setStatus('Cannot reach the study server; retrying… (your answers so far are saved)', true);
    setTimeout(advance, 2000);
  }
}

async function answer(choice) {
  if (!state.ready || state.busy || !state.current) return;
  state.busy = true;
  setReady(false);
  const current = state.current;
  const ms = performance.now() - state.shownAt;
  try {
    const r = await call('api/answer', {
      evaluator: state.evaluator, image: current.image, answer: choice, response_ms: Math.round(ms * 10) / 10,
    });
    if (r.status === 200) {
      window.jgan.acked.push(current.image);
      document.body.dataset.acked = String(window.jgan.acked.length);
    } else if (r.status !== 409) {  // 409: answered already (e.g. before a reload); move on
      throw new Error(r.data.error || 'HTTP ' + r.status);
    }
  } catch (e) {
    setStatus('The answer may not have been saved; reconnecting…', true);
  } finally {
    state.busy = false;
  }
  await advance();
}

document.addEventListener('keydown', (event) => {
  if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === 'r') answer('real');
  else if (key === 'f') answer('fake');
});
$('real').addEventListener('click', () => answer('real'));
$('fake').addEventListener('click', () => answer('fake'));
if (!window.localStorage) setStatus('This page needs localStorage to remember your place.', true);
advance();
