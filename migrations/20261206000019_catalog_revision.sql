-- The catalog's revision, moved on by every statement that changes what a search can list
-- (shows, films, theaters, screens): booking-core reads its listing of every upcoming show
-- again only when it moved (`booking-core/src/listing.rs`), rather than once a lifetime
-- whether anything changed or not (at the design's 350,000 shows, 1.5 s of work each time).
CREATE TABLE catalog_revision (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    revision bigint NOT NULL
);
INSERT INTO catalog_revision (revision) VALUES (0);

CREATE FUNCTION catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_revision SET revision = revision + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER shows_catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON shows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER movies_catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON movies
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER theaters_catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON theaters
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
CREATE TRIGGER screens_catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON screens
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changed();
