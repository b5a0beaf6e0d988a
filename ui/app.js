// The page: wires the upload queue, the live table, the counters and the event stream together.
// Its address takes `?status=<pending|processing|completed|failed>` (the filter) and `?limit=N`
// (rows per page, 1–200).

import { api } from './api.js';
import { onTokenChange, requestToken } from './auth.js';
import { createControls } from './controls.js';
import { renderDashboard } from './dashboard.js';
import { openDetail, refreshDetail, setupDetail, updateDetail } from './detail.js';
import { formatBytes, formatNumber } from './format.js';
import { applyTranslations, localize, onLanguageChange, setPlainText, setupLanguageSwitch, t } from './i18n.js';
import { connectEvents } from './live.js';
import { createPresets } from './presets.js';
import { createTable } from './table.js';
import { createUploader } from './uploads.js';

const $ = (id) => document.getElementById(id);

const MAX_PAGE_SIZE = 200;
/** Rows per page; `?limit=N` in the page's address overrides it (the server allows up to 200). */
const PAGE_SIZE = (() => {
  const asked = Number(new URL(window.location.href).searchParams.get('limit'));
  return Number.isInteger(asked) && asked >= 1 && asked <= MAX_PAGE_SIZE ? asked : 50;
})();
const STATS_MIN_INTERVAL_MS = 1000;
const STATS_POLL_MS = 10_000;
const OFFLINE_LIST_POLL_MS = 5000;
const STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'];
/** The empty list's text per filter ('' = all). */
const EMPTY_KEYS = {
  '': 'empty.none',
  pending: 'empty.pending',
  processing: 'empty.processing',
  completed: 'empty.completed',
  failed: 'empty.failed',
  cancelled: 'empty.cancelled',
};
const LIVE_KEYS = { live: 'live.live', connecting: 'live.connecting', offline: 'live.offline' };

const state = {
  filter: '',
  next: null,
  live: false,
  /** Bumped per list load, so an older response never overwrites a newer one. */
  listGeneration: 0,
  /** While a list load is in flight: images seen through events meanwhile (null = deleted). */
  seenDuringLoad: null,
  /** The last /api/stats answer, redrawn in the new language on a switch. */
  stats: null,
};

// ---- snackbar ---------------------------------------------------------------------------------

let snackTimer = null;
function announce(message) {
  const bar = $('snackbar');
  bar.textContent = message;
  bar.hidden = false;
  clearTimeout(snackTimer);
  snackTimer = setTimeout(() => {
    bar.hidden = true;
  }, 5000);
}

// ---- table and list loading --------------------------------------------------------------------

const table = createTable({
  tbody: $('image-rows'),
  emptyState: $('empty-state'),
  onRetry: retryImage,
  onCancel: cancelImage,
  onOpen: (image, opener) => openDetail(image, opener),
  onDelete: deleteImage,
  announce,
});

const matchesFilter = (image) => !state.filter || image.status === state.filter;

// ---- screen-reader announcements of finished images ------------------------------------------

const ANNOUNCE_EVERY_MS = 2000;
let finished = [];
let announceTimer = null;

/** Collects completions and failures, and says them in one sentence every couple of seconds. */
function noteFinished(image) {
  finished.push(image);
  if (announceTimer) return;
  announceTimer = setTimeout(() => {
    announceTimer = null;
    const done = finished.filter((i) => i.status === 'completed');
    const failed = finished.filter((i) => i.status === 'failed');
    finished = [];
    const name = (i) => i.filename || t('announce.untitled');
    const parts = [];
    if (done.length === 1) parts.push(t('announce.oneCompleted', { name: name(done[0]) }));
    else if (done.length > 1) parts.push(t('announce.manyCompleted', { count: done.length }));
    if (failed.length === 1) parts.push(t('announce.oneFailed', { name: name(failed[0]), error: failed[0].error || t('announce.noReason') }));
    else if (failed.length > 1) parts.push(t('announce.manyFailed', { count: failed.length }));
    $('status-announcer').textContent = parts.length ? `${parts.join('; ')}.` : '';
  }, ANNOUNCE_EVERY_MS);
}

function applyImage(image) {
  if (state.seenDuringLoad) state.seenDuringLoad.set(image.id, image);
  updateDetail(image);
  const previous = table.statusOf(image.id);
  if (previous && previous !== image.status && (image.status === 'completed' || image.status === 'failed')) {
    noteFinished(image);
  }
  if (!matchesFilter(image)) {
    table.remove(image.id);
    return;
  }
  // An image older than the last loaded row belongs to a page the user has not loaded yet.
  if (!table.has(image.id) && state.next && table.isOlderThanLoaded(image)) return;
  table.upsert(image);
}

/**
 * An image object from our own request (upload, retry). It may be older than what an event has
 * already shown (a small image can finish before the upload's answer arrives), so it only fills
 * a gap; a fresh read settles the row.
 */
function applyOwnResult(image) {
  if (!table.has(image.id)) applyImage(image);
  refreshImage(image.id);
}

function forgetImage(id) {
  if (state.seenDuringLoad) state.seenDuringLoad.set(id, null);
  table.remove(id);
}

function updateLoadMore() {
  $('load-more').hidden = !state.next;
}

/** Loads the first page again. `keepLoaded` keeps as many rows as are shown (for a resync). */
async function reload({ keepLoaded = true } = {}) {
  const generation = ++state.listGeneration;
  const limit = keepLoaded ? Math.min(MAX_PAGE_SIZE, Math.max(PAGE_SIZE, table.size)) : PAGE_SIZE;
  const seen = new Map();
  state.seenDuringLoad = seen;
  try {
    const page = await api.list({ status: state.filter, limit });
    if (generation !== state.listGeneration) return;
    table.replaceAll((page.images || []).filter(matchesFilter));
    state.next = page.next || null;
    // Events that arrived while the list was on its way are newer than the list.
    for (const [id, image] of seen) {
      if (image) applyImage(image);
      else table.remove(id);
    }
  } catch (err) {
    if (generation !== state.listGeneration) return;
    if (table.size === 0) table.setEmptyText('list.loadError', { message: err.message });
    else announce(t('list.refreshError', { message: err.message }));
  } finally {
    if (state.seenDuringLoad === seen) state.seenDuringLoad = null;
    updateLoadMore();
  }
}

async function loadMore() {
  const button = $('load-more');
  if (!state.next) return;
  button.disabled = true;
  const generation = state.listGeneration;
  try {
    const page = await api.list({ status: state.filter, limit: PAGE_SIZE, before: state.next });
    if (generation !== state.listGeneration) return;
    state.next = page.next || null;
    for (const image of page.images || []) if (matchesFilter(image)) table.upsert(image);
  } catch (err) {
    announce(t('list.moreError', { message: err.message }));
  } finally {
    button.disabled = false;
    updateLoadMore();
  }
}

function setFilter(status) {
  state.filter = STATUSES.includes(status) ? status : '';
  for (const chip of document.querySelectorAll('#status-filter .filter-chip')) {
    chip.setAttribute('aria-pressed', String(chip.dataset.status === state.filter));
  }
  const url = new URL(window.location.href);
  if (state.filter) url.searchParams.set('status', state.filter);
  else url.searchParams.delete('status');
  window.history.replaceState(null, '', url);
  state.next = null;
  table.replaceAll([]);
  table.setEmptyText('empty.loading');
  reload({ keepLoaded: false }).then(() => {
    if (table.size === 0 && table.emptyKey === 'empty.loading') table.setEmptyText(EMPTY_KEYS[state.filter]);
  });
}

// ---- actions ----------------------------------------------------------------------------------

async function retryImage(image) {
  const name = image.filename || image.id;
  try {
    const updated = await api.retry(image.id);
    if (updated && updated.id) applyOwnResult(updated);
    else refreshImage(image.id);
    announce(t('action.retried', { name }));
    scheduleStats();
  } catch (err) {
    announce(t('action.retryError', { name, message: err.message }));
    refreshImage(image.id);
  }
}

async function cancelImage(image) {
  const name = image.filename || image.id;
  try {
    const updated = await api.cancel(image.id);
    if (updated && updated.id) applyOwnResult(updated);
    else refreshImage(image.id);
    announce(t('action.cancelled', { name }));
    scheduleStats();
  } catch (err) {
    // 409: it finished meanwhile; the row shows how.
    announce(err.status === 409 ? t('action.alreadyFinished', { name }) : t('action.cancelError', { name, message: err.message }));
    refreshImage(image.id);
  }
}

/** Runs a bulk action over every failed image, call after call (each takes at most 10 000). */
async function bulkOnFailed(action, key, doneKey) {
  let total = 0;
  try {
    for (let calls = 0; calls < 100; calls += 1) {
      const answer = await action({ status: 'failed' });
      total += Number(answer?.[key]) || 0;
      if (!answer?.more) break;
    }
    announce(t(doneKey, { count: total }));
  } catch (err) {
    announce(t('bulk.error', { message: err.message, count: total }));
  }
  // Many rows changed at once: reload the list rather than follow each event.
  reload({ keepLoaded: false });
  scheduleStats();
}

$('retry-failed').addEventListener('click', () => bulkOnFailed(api.retryMany, 'retried', 'bulk.retried'));
$('delete-failed').addEventListener('click', () => {
  const n = Number(state.stats?.counts?.failed) || 0;
  if (window.confirm(t('bulk.confirmDelete', { count: n }))) {
    bulkOnFailed(api.removeMany, 'deleted', 'bulk.deleted');
  }
});

async function deleteImage(image) {
  const name = image.filename || image.id;
  try {
    await api.remove(image.id);
    forgetImage(image.id);
    announce(t('action.deleted', { name }));
    scheduleStats();
  } catch (err) {
    if (err.status === 404) forgetImage(image.id);
    else announce(t('action.deleteError', { name, message: err.message }));
  }
}

// ---- live events ------------------------------------------------------------------------------

/** id → "another event came while fetching", so a burst of events costs at most two fetches. */
const inFlight = new Map();

async function refreshImage(id) {
  if (inFlight.has(id)) {
    inFlight.set(id, true);
    return;
  }
  try {
    do {
      inFlight.set(id, false);
      try {
        applyImage(await api.get(id));
      } catch (err) {
        if (err.status === 404) forgetImage(id);
      }
    } while (inFlight.get(id));
  } finally {
    inFlight.delete(id);
  }
}

function onImageEvent({ id, status }) {
  scheduleStats();
  if (status === 'deleted') forgetImage(id);
  else refreshImage(id);
}

/** A variant of an image changed: its row (and an open detail view) follow a fresh read. */
function onVariantEvent({ id }) {
  refreshImage(id);
}

function setLiveState(liveState) {
  state.live = liveState === 'live';
  const indicator = $('live-indicator');
  indicator.dataset.state = liveState;
  if (LIVE_KEYS[liveState]) localize(indicator, LIVE_KEYS[liveState]);
  else setPlainText(indicator, liveState);
}

// ---- counters ---------------------------------------------------------------------------------

let statsTimer = null;
let statsQueued = false;

/** Refreshes the counters now, or once the throttle interval ends if it just ran. */
function scheduleStats() {
  if (statsTimer) {
    statsQueued = true;
    return;
  }
  refreshStats();
  statsTimer = setTimeout(() => {
    statsTimer = null;
    if (statsQueued) {
      statsQueued = false;
      scheduleStats();
    }
  }, STATS_MIN_INTERVAL_MS);
}

async function refreshStats() {
  let stats;
  try {
    stats = await api.stats();
  } catch {
    return; // the list shows connection problems; the counters just keep their last values
  }
  if (!stats) return;
  state.stats = stats;
  renderStats(stats);
  if (Number(stats.max_upload_bytes) > 0) uploader.setMaxBytes(Number(stats.max_upload_bytes));
  renderUploadHint();
}

/** The counters, the throughput line and the dashboard, from a /api/stats answer. */
function renderStats(stats) {
  const counts = stats.counts || {};
  let total = 0;
  for (const status of STATUSES) {
    const n = Number(counts[status]) || 0;
    total += n;
    const badge = document.querySelector(`[data-count="${status}"]`);
    if (badge) badge.textContent = formatNumber(n);
  }
  document.querySelector('[data-count="all"]').textContent = formatNumber(total);
  const failed = Number(counts.failed) || 0;
  $('retry-failed').disabled = failed === 0;
  $('delete-failed').disabled = failed === 0;
  const parts = [];
  if (stats.queue_depth != null) parts.push(t('stats.inQueue', { count: Number(stats.queue_depth) }));
  // Only worth a word when something has been waiting noticeably.
  if (Number(stats.oldest_pending_seconds) >= 1) {
    parts.push(t('stats.oldest', { seconds: Math.round(stats.oldest_pending_seconds) }));
  }
  if (stats.completed_last_minute != null) parts.push(t('stats.lastMinute', { count: Number(stats.completed_last_minute) }));
  $('throughput').textContent = parts.join(' · ');
  renderDashboard(stats);
}

function renderUploadHint() {
  localize($('drop-hint'), 'upload.hint', { size: formatBytes(uploader.maxBytes) });
}

// ---- uploads ----------------------------------------------------------------------------------

const controls = createControls($('ops-form'), {
  listCompleted: () => api.list({ status: 'completed', limit: 100 }).then((page) => page.images || []),
});
const presets = createPresets({
  pipeline: () => controls.pipeline(),
  announce,
  onChange: (list) => controls.setPresets(list),
});
const uploader = createUploader({
  list: $('upload-list'),
  getFields: controls.fields,
  validateFields: controls.validate,
  onUploaded: (image) => {
    applyOwnResult(image);
    scheduleStats();
  },
  announce,
});

function setupFileInputs() {
  const input = $('file-input');
  const zone = $('drop-zone');
  $('pick-button').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    uploader.add(input.files);
    input.value = ''; // picking the same files again should upload them again
  });

  // Files dropped anywhere on the page are uploaded (rather than opened by the browser).
  let depth = 0;
  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes('Files');
  window.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    zone.classList.add('drop-zone--active');
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove('drop-zone--active');
  });
  window.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  window.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    zone.classList.remove('drop-zone--active');
    uploader.add(event.dataTransfer.files);
  });
  // Pasting an image (e.g. a screenshot) uploads it too.
  document.addEventListener('paste', (event) => {
    const files = event.clipboardData?.files;
    if (files && files.length && !event.target.closest?.('input, textarea')) uploader.add(files);
  });
}

// ---- start ------------------------------------------------------------------------------------

/** After a language switch: redraw everything JavaScript wrote (static texts follow data-i18n). */
function redrawTexts() {
  table.refresh();
  controls.refreshSummary();
  uploader.refresh();
  renderUploadHint();
  presets.refresh();
  if (state.stats) renderStats(state.stats);
  refreshDetail();
}

function start() {
  applyTranslations();
  setupLanguageSwitch($('language-select'));
  onLanguageChange(redrawTexts);
  renderUploadHint();
  setupFileInputs();
  setupDetail({ announce });
  // On a phone the options would push the list far down: start them folded.
  if (window.matchMedia('(max-width: 720px)').matches) $('ops-details').open = false;
  for (const chip of document.querySelectorAll('#status-filter .filter-chip')) {
    chip.addEventListener('click', () => setFilter(chip.dataset.status));
  }
  $('load-more').addEventListener('click', loadMore);
  $('token-button').addEventListener('click', () => requestToken({ userInitiated: true }));
  onTokenChange(() => {
    scheduleStats();
    reload();
    presets.load();
  });
  presets.load();

  setFilter(new URL(window.location.href).searchParams.get('status') || '');
  scheduleStats();
  connectEvents({
    onOpen: () => {
      reload(); // anything may have changed while the stream was down
      scheduleStats();
      presets.load(); // presets have no events: made elsewhere (curl, SQL), they show up here
    },
    onImage: onImageEvent,
    onVariant: onVariantEvent,
    onState: setLiveState,
  });
  setInterval(scheduleStats, STATS_POLL_MS);
  // Without the event stream (a proxy that buffers it, say), fall back to polling.
  setInterval(() => {
    if (!state.live && !document.hidden) reload();
  }, OFFLINE_LIST_POLL_MS);
}

start();
