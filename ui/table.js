// The image table: one row per image, kept sorted newest first, updated in place as events arrive.

import { api } from './api.js';
import { currentToken } from './auth.js';
import { blurhashCanvas } from './blurhash.js';
import { h, icon } from './dom.js';
import { elapsed, formatBytes, formatDims, formatDuration, formatTimestamp, summarizePipeline } from './format.js';
import { t } from './i18n.js';

const STATUS_KEYS = {
  pending: 'status.pending',
  processing: 'status.processing',
  completed: 'status.completed',
  failed: 'status.failed',
  cancelled: 'status.cancelled',
};

/** A status's name in the current language (an unknown one as the server sent it). */
export function statusLabel(status) {
  return STATUS_KEYS[status] ? t(STATUS_KEYS[status]) : status;
}

/**
 * A cell's `data-label` stays the English column name (a stable hook for tests and styles);
 * `data-caption`, the translated name, is what phones show before the value.
 */
const cellLabel = (label, key) => ({ 'data-label': label, 'data-caption': t(key) });

/** An animation larger than this keeps the still thumbnail in the list. */
const ANIMATED_MAX_BYTES = 2 * 1024 * 1024;
/** Originals a browser plays by itself (before the result exists). */
const BROWSER_ANIMATES = new Set(['image/gif', 'image/webp', 'image/png', 'image/apng']);
const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

/**
 * An <a download> cannot send the Authorization header: with a token, its click fetches the
 * bytes instead and saves them under the server's file name (else `name`).
 */
export function withToken(link, name, announce) {
  link.addEventListener('click', async (event) => {
    if (!currentToken()) return;
    event.preventDefault();
    try {
      const { blob, filename } = await api.blob(link.getAttribute('href'));
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: filename || name, class: 'visually-hidden' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      announce(t('table.downloadFailed', { message: err.message }));
    }
  });
  return link;
}

/** A row's variants, compact: each preset with its status, a download link once made. */
export function variantList(image, announce) {
  const entries = Object.entries(image.variants || {});
  if (!entries.length) return null;
  const name = image.filename || image.id.slice(0, 8);
  return h(
    'ul',
    { class: 'variant-list', 'aria-label': t('variants.listLabel', { name }) },
    entries.map(([preset, v]) => {
      const status = h('span', { class: 'variant__status', text: statusLabel(v.status), title: v.error || null });
      const label = v.status === 'completed' && v.url
        ? withToken(h('a', { class: 'variant__link', href: v.url, download: '', text: preset, title: t('variants.download', { preset }), dataset: { action: `variant-${preset}` } }), `${preset}`, announce)
        : h('span', { class: 'variant__name', text: preset });
      return h('li', { class: 'variant', dataset: { preset, status: v.status } }, label, ' ', status);
    }),
  );
}

export function createTable({ tbody, emptyState, onRetry, onCancel, onDelete, onOpen, announce }) {
  /** id → {image, tr} for every row on the page. */
  const rows = new Map();
  /** id → {key, url} of thumbnails already fetched as blob: URLs. */
  const thumbs = new Map();
  let empty = { key: 'empty.none', vars: undefined };

  // Asking for less motion (or no longer) swaps animations and stills at once.
  reducedMotion.addEventListener('change', () => {
    for (const { image } of [...rows.values()]) upsert(image);
  });

  const displayName = (image) => image.filename || t('table.untitled', { id: image.id.slice(0, 8) });

  /**
   * The server's order: uploaded_at (microseconds) then id, both descending. Date.parse stops at
   * milliseconds, so two uploads in the same millisecond would otherwise fall back to the id and
   * disagree with the pages the server hands out.
   */
  function uploadedMicros(image) {
    const ms = Date.parse(image.uploaded_at);
    if (!Number.isFinite(ms)) return 0;
    const fraction = /\.(\d+)/.exec(image.uploaded_at)?.[1] || '';
    return ms * 1000 + Number(fraction.slice(3, 6).padEnd(3, '0'));
  }

  function newerFirst(a, b) {
    return uploadedMicros(b) - uploadedMicros(a) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  }

  function downloadLink(image, kind) {
    const name = displayName(image);
    const href = image.links?.[kind] || `/api/images/${image.id}/${kind}`;
    const label = kind === 'processed' ? t('table.downloadProcessedLabel', { name }) : t('table.downloadOriginalLabel', { name });
    const title = kind === 'processed' ? t('table.downloadProcessed') : t('table.downloadOriginal');
    const link = h(
      'a',
      { class: 'icon-button', href, download: '', 'aria-label': label, title, dataset: { action: `download-${kind}` } },
      icon(kind === 'processed' ? 'download' : 'original'),
    );
    return withToken(link, name, announce);
  }

  function actionButton(action, label, title, iconName, handler) {
    return h('button', { class: 'icon-button', type: 'button', 'aria-label': label, title, dataset: { action }, onclick: handler }, icon(iconName));
  }

  /**
   * What the preview cell shows: an animated result (or, before it exists, an animated original)
   * plays in the cell when it is small enough and the reader has not asked for less motion;
   * otherwise the server's still thumbnail once completed. {href, animated} or null.
   */
  function previewOf(image) {
    const completed = image.status === 'completed';
    if (!reducedMotion.matches) {
      const processed = image.processed;
      if (completed && processed && Number(processed.frames) > 1 && Number(processed.bytes) <= ANIMATED_MAX_BYTES && image.links?.processed) {
        return { href: image.links.processed, animated: true };
      }
      const original = image.original;
      if (
        !completed && original && Number(original.frames) > 1 && Number(original.bytes) <= ANIMATED_MAX_BYTES &&
        BROWSER_ANIMATES.has(original.content_type) && image.links?.original
      ) {
        return { href: image.links.original, animated: true };
      }
    }
    if (completed && image.links?.thumbnail) return { href: image.links.thumbnail, animated: false };
    return null;
  }

  const previewKey = (image, preview) => `${image.processed_at || ''} ${preview.href}`;

  function previewImg(url, preview) {
    return h('img', { src: url, alt: '', width: '48', height: '48', decoding: 'async', dataset: { source: preview.href, animated: String(preview.animated) } });
  }

  function thumbnailCell(image) {
    const cell = h('td', { class: 'cell-thumb', ...cellLabel('Preview', 'table.preview') });
    const box = h('div', { class: 'thumb', dataset: { status: image.status } });
    cell.append(box);
    const preview = previewOf(image);
    if (preview) {
      const key = previewKey(image, preview);
      const cached = thumbs.get(image.id);
      if (cached && cached.key === key && cached.url) {
        box.append(previewImg(cached.url, preview));
      } else {
        // The original's BlurHash stands in until the picture arrives.
        box.append(blurhashCanvas(image.original?.blurhash) || icon(image.status === 'completed' ? 'image' : 'hourglass', 'thumb__placeholder'));
        loadThumbnail(image, key, preview);
      }
    } else {
      box.append(icon(image.status === 'failed' ? 'broken' : 'hourglass', 'thumb__placeholder'));
    }
    return cell;
  }

  async function loadThumbnail(image, key, preview) {
    const entry = { key, url: null };
    const old = thumbs.get(image.id);
    if (old?.key === key) return; // already loading
    if (old?.url) URL.revokeObjectURL(old.url);
    thumbs.set(image.id, entry);
    try {
      const { blob } = await api.blob(preview.href);
      if (thumbs.get(image.id) !== entry) return;
      entry.url = URL.createObjectURL(blob);
      const row = rows.get(image.id);
      const box = row?.tr.querySelector('.thumb');
      const now = row && previewOf(row.image);
      if (box && now && previewKey(row.image, now) === key) box.replaceChildren(previewImg(entry.url, preview));
    } catch {
      if (thumbs.get(image.id) === entry) thumbs.delete(image.id);
    }
  }

  function renderRow(image) {
    const name = displayName(image);
    const original = image.original || {};
    const processed = image.processed || null;
    const nameCell = h(
      'td',
      { class: 'cell-name', ...cellLabel('Name', 'table.name') },
      // The name opens the detail view.
      h('button', { class: 'cell-name__file', type: 'button', text: name, title: t('table.details', { name }), dataset: { action: 'details' }, onclick: (event) => onOpen(image, event.currentTarget) }),
      h('div', { class: 'cell-name__meta', text: summarizePipeline(image.pipeline), title: t('table.uploadedAt', { time: formatTimestamp(image.uploaded_at), id: image.id }) }),
    );
    // A cancelled row's reason is its chip; only real errors are shown in red.
    if (image.error && image.status !== 'cancelled') nameCell.append(h('div', { class: 'cell-name__error', text: image.error }));
    const variants = variantList(image, announce);
    if (variants) nameCell.append(variants);

    const chipText = statusLabel(image.status);
    const attempts = image.attempts > 1 ? ` · ${t('table.attempt', { count: Number(image.attempts) })}` : '';
    const statusCell = h('td', cellLabel('Status', 'table.status'), h('span', { class: 'status-chip', dataset: { status: image.status } }, h('span', { class: 'status-chip__dot', 'aria-hidden': 'true' }), `${chipText}${attempts}`));

    const becomes = () => h('span', { class: 'arrow', 'aria-label': t('table.becomes') }, ' → ');
    const sizeCell = h('td', { class: 'cell-num', ...cellLabel('Size', 'table.size') }, formatBytes(original.bytes));
    if (processed) sizeCell.append(becomes(), formatBytes(processed.bytes));

    const dimsCell = h('td', { class: 'cell-num', ...cellLabel('Dimensions', 'table.dimensions') }, formatDims(original) || '—');
    if (processed && formatDims(processed)) dimsCell.append(becomes(), formatDims(processed));

    let took = '—';
    if (image.status === 'processing') took = t('table.running');
    else if (image.processed_at && image.started_at) took = formatDuration(elapsed(image.started_at, image.processed_at));
    const finished = image.processed_at ? t('table.finishedAt', { time: formatTimestamp(image.processed_at) }) : '';
    const timeCell = h('td', { class: 'cell-num', ...cellLabel('Time', 'table.timeShort'), title: finished }, took);

    const actions = h('div', { class: 'row-actions' }, downloadLink(image, 'original'));
    if (image.status === 'completed') actions.append(downloadLink(image, 'processed'));
    if (image.status === 'pending' || image.status === 'processing') {
      actions.append(actionButton('cancel', t('action.cancelLabel', { name }), t('action.cancel'), 'cancel', () => onCancel(image)));
    }
    if (image.status === 'completed' || image.status === 'failed' || image.status === 'cancelled') {
      actions.append(actionButton('retry', t('action.retryLabel', { name }), t('action.retry'), 'retry', () => onRetry(image)));
    }
    actions.append(actionButton('delete', t('action.deleteLabel', { name }), t('action.delete'), 'delete', () => onDelete(image)));
    const actionsCell = h('td', { class: 'cell-actions', ...cellLabel('Actions', 'table.actions') }, actions);

    return h(
      'tr',
      { class: 'image-row', dataset: { id: image.id, status: image.status, processedAt: image.processed_at || '' } },
      thumbnailCell(image),
      nameCell,
      statusCell,
      sizeCell,
      dimsCell,
      timeCell,
      actionsCell,
    );
  }

  function firstRowAtOrAfter(image) {
    for (const tr of tbody.children) {
      const other = rows.get(tr.dataset.id);
      if (other && other.image.id !== image.id && newerFirst(image, other.image) < 0) return tr;
    }
    return null;
  }

  function updateEmpty() {
    emptyState.hidden = rows.size > 0;
    emptyState.textContent = t(empty.key, empty.vars);
  }

  function upsert(image) {
    const existing = rows.get(image.id);
    const tr = renderRow(image);
    if (existing) {
      // Keep keyboard focus on the same control when a row is redrawn under it.
      const focused = existing.tr.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      existing.tr.replaceWith(tr);
      rows.set(image.id, { image, tr });
      if (uploadedMicros(existing.image) !== uploadedMicros(image)) {
        tr.remove();
        tbody.insertBefore(tr, firstRowAtOrAfter(image));
      }
      if (focused) (tr.querySelector(`[data-action="${focused}"]`) || tr.querySelector('[data-action="delete"]'))?.focus();
    } else {
      rows.set(image.id, { image, tr });
      tbody.insertBefore(tr, firstRowAtOrAfter(image));
    }
    updateEmpty();
  }

  function remove(id) {
    const row = rows.get(id);
    if (!row) return;
    const hadFocus = row.tr.contains(document.activeElement);
    const next = row.tr.nextElementSibling || row.tr.previousElementSibling;
    row.tr.remove();
    rows.delete(id);
    const thumb = thumbs.get(id);
    if (thumb?.url) URL.revokeObjectURL(thumb.url);
    thumbs.delete(id);
    if (hadFocus) (next?.querySelector('[data-action="delete"]') || document.getElementById('images-title'))?.focus();
    updateEmpty();
  }

  return {
    upsert,
    remove,
    has: (id) => rows.has(id),
    statusOf: (id) => rows.get(id)?.image.status,
    get size() {
      return rows.size;
    },
    /** The oldest image on the page: events about anything older belong to a page not loaded yet. */
    oldest() {
      let oldest = null;
      for (const { image } of rows.values()) if (!oldest || newerFirst(image, oldest) > 0) oldest = image;
      return oldest;
    },
    isOlderThanLoaded(image) {
      const oldest = this.oldest();
      return Boolean(oldest) && newerFirst(image, oldest) > 0;
    },
    /** Replaces all rows with a fresh first page (after a filter change or an event-stream reconnect). */
    replaceAll(images) {
      const keep = new Set(images.map((image) => image.id));
      for (const id of [...rows.keys()]) if (!keep.has(id)) remove(id);
      for (const image of images) upsert(image);
      updateEmpty();
    },
    /** The text shown while there are no rows: a catalogue key and its variables. */
    setEmptyText(key, vars) {
      empty = { key, vars };
      updateEmpty();
    },
    get emptyKey() {
      return empty.key;
    },
    /** Redraws every row and the empty text (after a language switch). */
    refresh() {
      for (const { image } of [...rows.values()]) upsert(image);
      updateEmpty();
    },
  };
}
