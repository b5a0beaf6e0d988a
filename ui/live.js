// The live event stream (Server-Sent Events): reconnects with backoff and reports its state.

import { api } from './api.js';
import { currentToken, onTokenChange } from './auth.js';

const MIN_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/**
 * Opens GET /api/events. `onOpen` runs on every (re)connect and on a `resync` event, so the caller
 * can refetch the list;
 * `onImage({id, status})` runs per status change, `onVariant({id, preset, status})` per change of
 * one of an image's variants; `onState('live'|'connecting'|'offline')`.
 */
export function connectEvents({ onOpen, onImage, onVariant, onState }) {
  let source = null;
  let retryMs = MIN_RETRY_MS;
  let timer = null;

  function url() {
    // EventSource cannot send headers; the server accepts the token as a query parameter here only.
    const token = currentToken();
    return token ? `/api/events?access_token=${encodeURIComponent(token)}` : '/api/events';
  }

  function connect() {
    clearTimeout(timer);
    source?.close();
    onState('connecting');
    source = new EventSource(url());
    source.addEventListener('open', () => {
      retryMs = MIN_RETRY_MS;
      onState('live');
      onOpen();
    });
    source.addEventListener('image', (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (data && typeof data.id === 'string') onImage(data);
    });
    source.addEventListener('variant', (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (data && typeof data.id === 'string') onVariant?.(data);
    });
    // The server lost events for us (we lagged, or it reconnected to the database): refetch.
    source.addEventListener('resync', () => onOpen());
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CONNECTING) {
        onState('connecting'); // the browser retries by itself
        return;
      }
      // Closed for good (an error status, say a 401): probe with a normal request, which asks
      // for a token if that was the cause, then reconnect with backoff.
      source.close();
      onState('offline');
      timer = setTimeout(async () => {
        try {
          await api.stats();
        } catch {
          // still down: connect() below fails again and backs off further
        }
        connect();
      }, retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    });
  }

  onTokenChange(() => {
    retryMs = MIN_RETRY_MS;
    connect();
  });
  connect();
  return { reconnect: connect };
}
