-- The stable, machine-readable code of a failure (`corrupt_image`, `image_too_large`,
-- `invalid_pipeline`, `worker_lost`, ...) beside its human `error` text, so clients and SQL can
-- branch on it without parsing a sentence. NULL whenever `error` is NULL.
ALTER TABLE processed_images ADD COLUMN error_code TEXT;
