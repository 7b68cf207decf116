-- The llmref team corpus, schema version 2 (applied by `llmref db init`, as the database
-- owner or an admin; every object lives in the schema `llmref`).
--
-- Search runs the engine-neutral Clause plan of lookup.py (see team/search.py):
--   * lexicon + postings: BM25F statistics and impact-ordered posting lists (the candidate
--     pass reads at most K postings per query term, best first);
--   * entries.tsv: the entry's normalize.tokens as a tsvector (configuration-free, 'simple'
--     semantics) with positions and field weights A question, B concept names, C answer,
--     D concept tags; phrase and all-of clauses are checked with tsquery <-> and &, and the
--     GIN index serves ad-hoc SQL (ts_rank_cd, @@) over the same tokens.

CREATE SCHEMA IF NOT EXISTS llmref;

CREATE TABLE llmref.meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

-- one row: what BM25 needs about the whole corpus, and the publish generation
CREATE TABLE llmref.stats (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    docs bigint NOT NULL DEFAULT 0,
    -- total field lengths: question, names, answer, concepts, answer_concepts
    lengths float8[] NOT NULL DEFAULT '{0,0,0,0,0}',
    generation bigint NOT NULL DEFAULT 0,  -- +1 for every publish that changed something
    published timestamptz
);
INSERT INTO llmref.stats DEFAULT VALUES;

CREATE TABLE llmref.files (
    id serial PRIMARY KEY,
    path text NOT NULL UNIQUE,        -- display path (folder name/relative path): the key
    origin text NOT NULL,             -- the absolute path on the publisher's machine
    sort text NOT NULL,               -- corpus order
    digest text NOT NULL,             -- sha256 of the bytes, with the pipeline fingerprint
    entries integer NOT NULL,
    problems text NOT NULL DEFAULT '[]',
    published timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE llmref.entry_rowid;
CREATE TABLE llmref.entries (
    rowid integer PRIMARY KEY,
    id text NOT NULL UNIQUE,          -- team:<slug>:<hash>
    file integer NOT NULL REFERENCES llmref.files (id) ON DELETE CASCADE,
    ord integer NOT NULL,
    data text NOT NULL,               -- the entry (llmref.store.entry_json)
    lens integer[] NOT NULL,          -- field lengths as Whoosh scores them (quantized)
    sizes integer[] NOT NULL,         -- exact field lengths (the totals in stats)
    concepts text[] NOT NULL,         -- named by the question
    answer_concepts text[] NOT NULL,  -- named by the answer only
    tsv tsvector NOT NULL
);
CREATE INDEX entries_file ON llmref.entries (file, ord);
CREATE INDEX entries_id_prefix ON llmref.entries (id text_pattern_ops);
CREATE INDEX entries_tsv ON llmref.entries USING gin (tsv);

-- field: 0 question, 1 names, 2 answer, 3 concepts, 4 answer_concepts
CREATE TABLE llmref.lexicon (
    id serial PRIMARY KEY,
    field smallint NOT NULL,
    term text NOT NULL,
    df integer NOT NULL,
    UNIQUE (field, term)
);

CREATE TABLE llmref.postings (
    term integer NOT NULL,
    entry integer NOT NULL,
    tf smallint NOT NULL,
    impact real NOT NULL              -- BM25's tf part at publish time: the list order
);
CREATE INDEX postings_impact ON llmref.postings (term, impact DESC) INCLUDE (entry, tf);
CREATE INDEX postings_entry ON llmref.postings (entry);

-- every entry's terms (lexicon ids, ascending) with their frequencies: a search reads one row
-- per candidate to score it exactly (version 2)
CREATE TABLE llmref.entry_terms (
    entry integer PRIMARY KEY,
    terms integer[] NOT NULL,
    tfs smallint[] NOT NULL
);

-- concept -> entries, ranked by llmref.ranking.about_key (hover cards): key is that rank
-- without its (source, line) tail, which is corpus order (files.sort, entries.ord)
CREATE TABLE llmref.about (
    concept text NOT NULL,
    tier smallint NOT NULL,
    key bytea NOT NULL,
    entry integer NOT NULL
);
CREATE INDEX about_concept ON llmref.about (concept, key);
CREATE INDEX about_entry ON llmref.about (entry);
