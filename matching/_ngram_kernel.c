/* The "ngram" matcher's scan in C: the same walk, hashes, table probes and verification as the numpy
 * code in curation/matching_ngram.py (NgramBackend._match_chunk_numpy), one position at a time.
 *
 * numpy has to materialise every candidate span of a round as arrays; here a walk stops at the first
 * span that is not a key prefix, so most positions cost one probe, and walks run BATCH at a time with
 * their probes prefetched (the tables are larger than the caches). Both paths read the same tables and
 * must give the same (text, key) pairs: tests/curation/test_matching_ngram.py compares them.
 *
 * scan(cps, token, char_, starts, key_cps, key_offsets, base, mix) -> (texts bytes, keys bytes)
 *   cps          uint32 code points of spaced texts, each followed by SEPARATOR (0x110000)
 *   token, char_ None or (slots uint64, mask, shift, floor, value_mask): a HashTable's fields
 *   starts       (first_char, single_char, top, first_pair, pair_bits): which positions can start a
 *                non-token key. first_char/single_char uint8[top + 1], indexed by min(cp, top): some key
 *                starts with cp / is cp; first_pair uint8[2**pair_bits]: a bitmap of the first 2 and
 *                first 3 code points of longer keys (matching_ngram._pair_slot)
 *   key_cps      uint32 code points of all keys; key_offsets int64[n_keys + 1]
 *   base, mix    the hash's B and F: h(s) = F * sum(s[j] * B**j) mod 2**64
 * Returns int32 text indices and int32 key indices (native byte order), pairs in about text order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SEPARATOR 0x110000u
#define SPACE 32u
#define FIB 0x9E3779B97F4A7C15ull
#define PAIR_MUL 0xC2B2AE3D27D4EB4Full
#define TRIPLE_MUL 0x165667B19E3779F9ull

typedef struct {
    const uint8_t *first_char, *single_char, *first_pair;
    uint32_t top;
    unsigned pair_bits;
} starts_t;

/* A non-token key can start at p (superset: the walk decides). Mirrors NgramBackend's numpy filters. */
static inline int may_start(const starts_t *f, const uint32_t *cps, Py_ssize_t p, Py_ssize_t n) {
    uint32_t c0 = cps[p];
    uint32_t i0 = c0 < f->top ? c0 : f->top;
    if (!f->first_char[i0]) return 0;
    if (f->single_char[i0]) return 1;
    uint64_t c1 = p + 1 < n ? cps[p + 1] : SEPARATOR, c2 = cps[p + 2 < n ? p + 2 : n - 1];
    uint64_t pair = (uint64_t)c0 * FIB ^ c1 * PAIR_MUL;
    unsigned shift = 64 - f->pair_bits;
    return f->first_pair[pair >> shift] || f->first_pair[(pair ^ (c2 + 1) * TRIPLE_MUL) >> shift];
}

typedef struct {
    const uint64_t *slots;
    uint64_t mask, shift, floor, value_mask;
    int present;
} table_t;

typedef struct {
    int32_t *text, *key;
    size_t len, cap;
} pairs_t;

static inline uint64_t probe(const table_t *t, uint64_t h) {
    uint64_t slot = h >> t->shift;
    for (;;) {
        uint64_t row = t->slots[slot];
        if ((row ^ h) < t->floor) return row & t->value_mask;
        if (row == 0) return 0;
        slot = (slot + 1) & t->mask;
    }
}

static int push(pairs_t *p, int32_t text, int32_t key) {
    if (p->len == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 4096;
        int32_t *a = realloc(p->text, cap * sizeof(int32_t)), *b;
        if (!a) return -1;
        p->text = a;
        b = realloc(p->key, cap * sizeof(int32_t));
        if (!b) return -1;
        p->key = b;
        p->cap = cap;
    }
    p->text[p->len] = text;
    p->key[p->len] = key;
    p->len++;
    return 0;
}

typedef struct {
    const uint32_t *cps, *key_cps;
    const int64_t *key_offsets;
    Py_ssize_t n, n_keys;
    uint64_t base, mix;
} scan_t;

/* cps[pos:pos+len] equals key k's code points (rules out hash collisions); k < n_keys. */
static inline int verify(const scan_t *s, Py_ssize_t pos, Py_ssize_t len, uint64_t k) {
    int64_t a = s->key_offsets[k], b = s->key_offsets[k + 1];
    if (b - a != len) return 0;
    return memcmp(s->cps + pos, s->key_cps + a, (size_t)len * sizeof(uint32_t)) == 0;
}

/* One walk: the span cps[start:end] grows to the next boundary (token walks: the next space; char walks:
 * the next code point) while it is a key prefix. acc/pw carry the hash sum and B**(end - start). */
typedef struct {
    Py_ssize_t start, end;
    uint64_t acc, pw, h;
    int32_t text;
} walk_t;

#define BATCH 64 /* walks in flight: their table probes are prefetched together, hiding memory latency */

static inline int advance(const scan_t *s, walk_t *w, int token) {
    while (w->end < s->n) {
        uint32_t c = s->cps[w->end];
        if (c == SEPARATOR) return 0;
        w->acc += (uint64_t)c * w->pw;
        w->pw *= s->base;
        w->end++;
        if (!token || c == SPACE) {
            w->h = w->acc * s->mix;
            return 1;
        }
    }
    return 0;
}

/* Runs n walks to their ends in rounds. A round probes every walk's (prefetched) slot, then verifies the
 * key hits with their key offsets and code points prefetched, then advances the walks that are prefixes. */
static int run_walks(const scan_t *s, const table_t *t, walk_t *w, int n, int token, pairs_t *out) {
    uint64_t v[BATCH], key[BATCH];
    int hit[BATCH];
    while (n) {
        for (int i = 0; i < n; i++) __builtin_prefetch(t->slots + (w[i].h >> t->shift));
        int n_hit = 0;
        for (int i = 0; i < n; i++) {
            v[i] = probe(t, w[i].h);
            if (v[i] > 1 && (key[n_hit] = (v[i] >> 1) - 1) < (uint64_t)s->n_keys) {
                __builtin_prefetch(s->key_offsets + key[n_hit]);
                hit[n_hit++] = i;
            }
        }
        for (int j = 0; j < n_hit; j++) __builtin_prefetch(s->key_cps + s->key_offsets[key[j]]);
        for (int j = 0; j < n_hit; j++) {
            const walk_t *x = &w[hit[j]];
            if (verify(s, x->start, x->end - x->start, key[j]) && push(out, x->text, (int32_t)key[j])) return -1;
        }
        int m = 0;
        for (int i = 0; i < n; i++)
            if ((v[i] & 1) && advance(s, &w[i], token)) w[m++] = w[i];
        n = m;
    }
    return 0;
}

/* Starts a walk at p into the batch; runs the batch when it is full. */
static int add_walk(const scan_t *s, const table_t *t, walk_t *batch, int *n, Py_ssize_t p, int32_t text,
                    int token, pairs_t *out) {
    walk_t *w = &batch[*n];
    w->start = p, w->text = text;
    if (token) {  /* the span starts with the space at p */
        w->acc = SPACE, w->pw = s->base, w->end = p + 1;
    } else {
        w->acc = 0, w->pw = 1, w->end = p;
    }
    if (!advance(s, w, token)) return 0;
    if (++*n < BATCH) return 0;
    int rc = run_walks(s, t, batch, *n, token, out);
    *n = 0;
    return rc;
}

static int parse_table(PyObject *obj, table_t *t, Py_buffer *buf) {
    t->present = 0;
    if (obj == Py_None) return 0;
    PyObject *slots;
    unsigned long long mask, shift, floor, vmask;
    if (!PyArg_ParseTuple(obj, "OKKKK", &slots, &mask, &shift, &floor, &vmask)) return -1;
    if (PyObject_GetBuffer(slots, buf, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (buf->itemsize != 8 || (uint64_t)(buf->len / 8) != mask + 1) {
        PyBuffer_Release(buf);
        PyErr_SetString(PyExc_ValueError, "table slots must be uint64[mask + 1]");
        return -1;
    }
    t->slots = buf->buf;
    t->mask = mask, t->shift = shift, t->floor = floor, t->value_mask = vmask;
    t->present = 1;
    return 0;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer cps = {0}, first = {0}, single = {0}, pairs = {0}, kcps = {0}, koff = {0}, tok_buf = {0},
              chr_buf = {0};
    PyObject *tok_obj, *chr_obj, *result = NULL;
    Py_ssize_t top;
    unsigned pair_bits;
    unsigned long long base, mix;
    table_t tok = {0}, chr = {0};
    pairs_t out = {0};
    int failed = 0;

    if (!PyArg_ParseTuple(args, "y*OO(y*y*ny*I)y*y*KK", &cps, &tok_obj, &chr_obj, &first, &single, &top, &pairs,
                          &pair_bits, &kcps, &koff, &base, &mix))
        return NULL;
    if (parse_table(tok_obj, &tok, &tok_buf) < 0) goto done;
    if (parse_table(chr_obj, &chr, &chr_buf) < 0) goto done;
    if (top < 0 || top >= SEPARATOR || first.len < top + 1 || single.len < top + 1 || pair_bits < 1 ||
        pair_bits > 30 || pairs.len < ((Py_ssize_t)1 << pair_bits) || koff.len < 8 || cps.len % 4 ||
        kcps.len % 4) {
        PyErr_SetString(PyExc_ValueError, "scan: inconsistent array sizes (see curation/_ngram_kernel.c)");
        goto done;
    }
    scan_t s = {cps.buf, kcps.buf, koff.buf, cps.len / 4, koff.len / 8 - 1, base, mix};
    starts_t f = {first.buf, single.buf, pairs.buf, (uint32_t)top, pair_bits};

    Py_BEGIN_ALLOW_THREADS
    walk_t tok_walks[BATCH], chr_walks[BATCH];
    int n_tok = 0, n_chr = 0;
    int32_t text = 0;
    for (Py_ssize_t p = 0; p < s.n && !failed; p++) {
        uint32_t c = s.cps[p];
        if (c == SEPARATOR) {
            text++;
            continue;
        }
        if (tok.present && c == SPACE && add_walk(&s, &tok, tok_walks, &n_tok, p, text, 1, &out)) failed = 1;
        if (chr.present && may_start(&f, s.cps, p, s.n) &&
            add_walk(&s, &chr, chr_walks, &n_chr, p, text, 0, &out))
            failed = 1;
    }
    if (!failed && (run_walks(&s, &tok, tok_walks, n_tok, 1, &out) || run_walks(&s, &chr, chr_walks, n_chr, 0, &out)))
        failed = 1;
    Py_END_ALLOW_THREADS

    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    /* y# turns a NULL buffer into None: no pairs must still be two (empty) bytes objects */
    result = Py_BuildValue("(y#y#)", out.len ? (const char *)out.text : "", (Py_ssize_t)(out.len * sizeof(int32_t)),
                           out.len ? (const char *)out.key : "", (Py_ssize_t)(out.len * sizeof(int32_t)));
done:
    free(out.text);
    free(out.key);
    if (tok.present) PyBuffer_Release(&tok_buf);
    if (chr.present) PyBuffer_Release(&chr_buf);
    PyBuffer_Release(&cps);
    PyBuffer_Release(&first);
    PyBuffer_Release(&single);
    PyBuffer_Release(&pairs);
    PyBuffer_Release(&kcps);
    PyBuffer_Release(&koff);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "All (text, key) pairs of a batch of spaced texts, as int32 bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ngram_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ngram_kernel(void) { return PyModule_Create(&module); }
