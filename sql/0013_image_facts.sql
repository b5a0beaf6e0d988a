-- Image facts (issue 16, SPEC "Facts"): plain columns, so SQL can query them as the API shows
-- them. `sha256`, `exif` and `original_frames` are written at upload by the API (from the bytes
-- and the header), or on the first claim by the worker for rows a SQL INSERT made;
-- `blurhash` and `dominant_color` need pixels, so the worker writes them with the result.
--
-- Adding nullable columns without defaults only touches the catalogue; the index is partial
-- over the non-NULL hashes, so building it reads the table once and writes nothing for the
-- existing rows.
ALTER TABLE processed_images
    ADD COLUMN sha256 TEXT,
    ADD COLUMN blurhash TEXT,
    ADD COLUMN dominant_color TEXT,
    ADD COLUMN original_frames INTEGER,
    ADD COLUMN processed_frames INTEGER,
    ADD COLUMN exif JSONB;

COMMENT ON COLUMN processed_images.sha256 IS 'hex SHA-256 of original_data; the key of dedupe=true';
COMMENT ON COLUMN processed_images.blurhash IS 'BlurHash (4x3 components) of the original as shown';
COMMENT ON COLUMN processed_images.dominant_color IS '#rrggbb: the most common colour of the original';
COMMENT ON COLUMN processed_images.exif IS
    'make, model, lens, taken_at, exposure_time, f_number, iso, focal_length, orientation, has_gps (never GPS values)';

-- `dedupe=true` looks an upload's hash up here. Only API uploads (and rows the worker has
-- claimed once) have one, and the index is on the text, not the blob, so it is small.
CREATE INDEX processed_images_sha256_idx ON processed_images (sha256) WHERE sha256 IS NOT NULL;
