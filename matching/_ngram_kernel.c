/* The "ngram" matcher's scan in C: the same walk, hashes, table probes and verification as the numpy
 * code in matching/ngram.py (NgramBackend._match_chunk_numpy), one position at a time.
 *
 * numpy has to materialise every candidate span of a round as arrays; here a walk stops at the first
 * span that is not a key prefix, so most positions cost one probe, and walks run BATCH at a time with
 * their probes prefetched (the tables are larger than the caches). Both paths read the same tables and
 * must give the same (text, key) pairs: tests/matching/test_ngram.py compares them.
 *
 * scan(cps, token, char_, starts, key_cps, key_offsets, base, mix) -> (texts bytes, keys bytes)
 *   cps          uint32 code points of spaced texts, each followed by SEPARATOR (0x110000)
 *   token, char_ None or (slots uint64, mask, shift, floor, value_mask): a HashTable's fields
 *   starts       (first_char, single_char, top, first_pair, pair_bits, single_key): which positions can
 *                start a non-token key. first_char/single_char uint8[top + 1], indexed by min(cp, top): some
 *                key starts with cp / is cp; first_pair uint8[2**pair_bits / 8]: a bitmap (bit i = byte
 *                i >> 3, bit i & 7) of the first 2 and first 3 code points of longer keys
 *                (ngram._pair_slot; packed so that it stays in cache); single_key int32[top + 1]:
 *                the key that is cp (one-code-point keys match exactly, without a probe; as the numpy walk)
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
    const int32_t *single_key;
    uint32_t top;
    unsigned pair_bits;
} starts_t;

/* Non-token keys at p: bit 0 = the code point at p is a key (single_key), bit 1 = a key of 2+ code points
 * may start at p (superset: the walk decides). Mirrors NgramBackend's numpy filters. */
static inline int may_start(const starts_t *f, const uint32_t *cps, Py_ssize_t p, Py_ssize_t n) {
    uint32_t c0 = cps[p];
    uint32_t i0 = c0 < f->top ? c0 : f->top;
    if (!f->first_char[i0]) return 0;
    uint64_t c1 = p + 1 < n ? cps[p + 1] : SEPARATOR, c2 = cps[p + 2 < n ? p + 2 : n - 1];
    uint64_t pair = (uint64_t)c0 * FIB ^ c1 * PAIR_MUL;
    unsigned shift = 64 - f->pair_bits;
    uint64_t a = pair >> shift, b = (pair ^ (c2 + 1) * TRIPLE_MUL) >> shift;
    int longer = ((f->first_pair[a >> 3] >> (a & 7)) | (f->first_pair[b >> 3] >> (b & 7))) & 1;
    return (f->single_char[i0] ? 1 : 0) | (longer << 1);
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
    const uint32_t *x = s->cps + pos, *y = s->key_cps + a;  /* keys are short: a loop beats a memcmp call */
    for (Py_ssize_t i = 0; i < len; i++)
        if (x[i] != y[i]) return 0;
    return 1;
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
    for (int i = 0; i < n; i++) __builtin_prefetch(t->slots + (w[i].h >> t->shift));
    while (n) {
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
            if ((v[i] & 1) && advance(s, &w[i], token)) {  /* a prefix: grow it, prefetch its next probe */
                __builtin_prefetch(t->slots + (w[i].h >> t->shift));
                w[m++] = w[i];
            }
        n = m;
    }
    return 0;
}

/* Starts a walk at p into the batch; runs the batch when it is full. */
static int add_walk(const scan_t *s, const table_t *t, walk_t *batch, int *n, Py_ssize_t p, int32_t text,
                    int token, pairs_t *out) {
    walk_t *w = &batch[*n];
    w->start = p, w->text = text;
    /* token walks: the span starts with the space at p; char walks start at 2 code points (one-code-point
     * keys are matched exactly by may_start/single_key) */
    w->acc = s->cps[p], w->pw = s->base, w->end = p + 1;
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
    Py_buffer cps = {0}, first = {0}, single = {0}, pairs = {0}, skey = {0}, kcps = {0}, koff = {0}, tok_buf = {0},
              chr_buf = {0};
    PyObject *tok_obj, *chr_obj, *result = NULL;
    Py_ssize_t top;
    unsigned pair_bits;
    unsigned long long base, mix;
    table_t tok = {0}, chr = {0};
    pairs_t out = {0};
    int failed = 0;

    if (!PyArg_ParseTuple(args, "y*OO(y*y*ny*Iy*)y*y*KK", &cps, &tok_obj, &chr_obj, &first, &single, &top, &pairs,
                          &pair_bits, &skey, &kcps, &koff, &base, &mix))
        return NULL;
    if (parse_table(tok_obj, &tok, &tok_buf) < 0) goto done;
    if (parse_table(chr_obj, &chr, &chr_buf) < 0) goto done;
    if (top < 0 || top >= SEPARATOR || first.len < top + 1 || single.len < top + 1 || skey.len < 4 * (top + 1) ||
        pair_bits < 3 || pair_bits > 30 || pairs.len < ((Py_ssize_t)1 << (pair_bits - 3)) || koff.len < 8 || cps.len % 4 ||
        kcps.len % 4) {
        PyErr_SetString(PyExc_ValueError, "scan: inconsistent array sizes (see matching/_ngram_kernel.c)");
        goto done;
    }
    scan_t s = {cps.buf, kcps.buf, koff.buf, cps.len / 4, koff.len / 8 - 1, base, mix};
    starts_t f = {first.buf, single.buf, pairs.buf, skey.buf, (uint32_t)top, pair_bits};

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
        int kind = chr.present ? may_start(&f, s.cps, p, s.n) : 0;
        if ((kind & 1) && push(&out, text, f.single_key[c < f.top ? c : f.top])) failed = 1;
        if ((kind & 2) && add_walk(&s, &chr, chr_walks, &n_chr, p, text, 0, &out)) failed = 1;
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
    PyBuffer_Release(&skey);
    PyBuffer_Release(&pairs);
    PyBuffer_Release(&kcps);
    PyBuffer_Release(&koff);
    return result;
}

/* --- spacing: the reference `spacing` of each text, written as the code points `scan` reads ---------------
 * Per text: a space, then each code point c mapped as `spacing` maps it (one of , . ; : ? ! ` -> space, c,
 * space; tab, newline, carriage return -> space; anything else -> c), a space and SEPARATOR. `spacing`'s
 * str.replace calls act on single characters and insert only spaces, so this per-code-point map is the
 * same function (tests/matching/test_ngram.py checks it against ngram.spaced_batch). */

static inline Py_ssize_t space_cp(uint32_t c, uint32_t *o) {
    switch (c) {
    case ',': case '.': case ';': case ':': case '?': case '!': case '`':
        o[0] = SPACE, o[1] = c, o[2] = SPACE;
        return 3;
    case '\t': case '\n': case '\r':
        o[0] = SPACE;
        return 1;
    default:
        o[0] = c;
        return 1;
    }
}

/* A bytes object of n uint32 slots, shrunk to `used` slots (it was sized for the worst case). */
static PyObject *finish_cps(PyObject *buf, Py_ssize_t used) {
    if (_PyBytes_Resize(&buf, used * (Py_ssize_t)sizeof(uint32_t)) < 0) return NULL;
    return buf;
}

/* space_str(texts: list[str]) -> bytes: uint32 code points of the spaced texts, each followed by SEPARATOR. */
static PyObject *space_str(PyObject *self, PyObject *arg) {
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "space_str takes a list of str");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(arg), cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(arg, i);
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError, "space_str: text %zd is %.50s, not str", i, Py_TYPE(t)->tp_name);
            return NULL;
        }
        cap += 3 * PyUnicode_GET_LENGTH(t) + 3;
    }
    PyObject *buf = PyBytes_FromStringAndSize(NULL, cap * (Py_ssize_t)sizeof(uint32_t));
    if (!buf) return NULL;
    uint32_t *o = (uint32_t *)PyBytes_AS_STRING(buf), *o0 = o;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(arg, i);
        int kind = PyUnicode_KIND(t);
        const void *data = PyUnicode_DATA(t);
        Py_ssize_t len = PyUnicode_GET_LENGTH(t);
        *o++ = SPACE;
        for (Py_ssize_t j = 0; j < len; j++) o += space_cp(PyUnicode_READ(kind, data, j), o);
        *o++ = SPACE;
        *o++ = SEPARATOR;
    }
    return finish_cps(buf, o - o0);
}

/* One code point from valid UTF-8 at d[*p] (< end); -1 on an invalid or truncated sequence. */
static inline int64_t utf8_next(const uint8_t *d, Py_ssize_t *p, Py_ssize_t end) {
    uint32_t b = d[*p];
    if (b < 0x80) {
        (*p)++;
        return b;
    }
    int more;
    uint32_t c, min;
    if ((b & 0xE0) == 0xC0) more = 1, c = b & 0x1F, min = 0x80;
    else if ((b & 0xF0) == 0xE0) more = 2, c = b & 0x0F, min = 0x800;
    else if ((b & 0xF8) == 0xF0) more = 3, c = b & 0x07, min = 0x10000;
    else return -1;
    if (*p + more >= end) return -1;
    for (int k = 1; k <= more; k++) {
        uint32_t x = d[*p + k];
        if ((x & 0xC0) != 0x80) return -1;
        c = (c << 6) | (x & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return -1;
    *p += more + 1;
    return c;
}

/* space_utf8(data, offsets) -> bytes: space_str of the UTF-8 texts data[offsets[i]:offsets[i+1]] (an Arrow
 * string array's buffers; offsets int64), without making them Python strings. */
static PyObject *space_utf8(PyObject *self, PyObject *args) {
    Py_buffer data = {0}, off = {0};
    PyObject *buf = NULL;
    if (!PyArg_ParseTuple(args, "y*y*", &data, &off)) return NULL;
    const uint8_t *d = data.buf;
    const int64_t *offsets = off.buf;
    Py_ssize_t n = off.len / 8 - 1, bad = -1;
    if (off.len % 8 || n < 0 || (n >= 0 && (offsets[0] < 0 || offsets[n] > data.len))) {
        PyErr_SetString(PyExc_ValueError, "space_utf8: offsets must be int64[n + 1] within the data");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (offsets[i + 1] < offsets[i]) {
            PyErr_SetString(PyExc_ValueError, "space_utf8: offsets must not decrease");
            goto done;
        }
    /* a code point takes >= 1 byte: 3 slots per byte + 3 per text bound the output */
    buf = PyBytes_FromStringAndSize(NULL, (3 * (offsets[n] - offsets[0]) + 3 * n) * (Py_ssize_t)sizeof(uint32_t));
    if (!buf) goto done;
    uint32_t *o = (uint32_t *)PyBytes_AS_STRING(buf), *o0 = o;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && bad < 0; i++) {
        Py_ssize_t p = offsets[i], end = offsets[i + 1];
        *o++ = SPACE;
        while (p < end) {
            uint8_t b = d[p];
            if (b < 0x80) {  /* ASCII: the common case */
                o += space_cp(b, o);
                p++;
                continue;
            }
            int64_t c = utf8_next(d, &p, end);
            if (c < 0) {
                bad = i;
                break;
            }
            *o++ = (uint32_t)c;
        }
        *o++ = SPACE;
        *o++ = SEPARATOR;
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        Py_CLEAR(buf);
        PyErr_Format(PyExc_ValueError, "space_utf8: text %zd is not valid UTF-8", bad);
        goto done;
    }
    buf = finish_cps(buf, o - o0);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&off);
    return buf;
}

/* --- grouping: (text, key) pairs -> sorted unique entry ids per text ------------------------------------ */

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* group(texts int32, keys int32, key_ids int32, n_texts) -> (offsets int64[n_texts + 1], ids int32) bytes:
 * text t's entry ids key_ids[k] over its pairs, sorted and unique (matcher.pairs_to_result when every key
 * has one entry id). Pairs may come in any order and repeat. */
static PyObject *group(PyObject *self, PyObject *args) {
    Py_buffer tb = {0}, kb = {0}, ib = {0};
    Py_ssize_t n_texts;
    PyObject *result = NULL, *offs = NULL, *ids = NULL;
    int64_t *start = NULL;
    int32_t *tmp = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*n", &tb, &kb, &ib, &n_texts)) return NULL;
    Py_ssize_t n = tb.len / 4, n_keys = ib.len / 4, bad = -1;
    const int32_t *text = tb.buf, *key = kb.buf, *key_ids = ib.buf;
    if (tb.len % 4 || kb.len != tb.len || ib.len % 4 || n_texts < 0) {
        PyErr_SetString(PyExc_ValueError, "group: texts and keys must be int32 of one length, key_ids int32");
        goto done;
    }
    start = calloc((size_t)n_texts + 2, sizeof(int64_t));
    tmp = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    offs = PyBytes_FromStringAndSize(NULL, (n_texts + 1) * (Py_ssize_t)sizeof(int64_t));
    if (!start || !tmp || !offs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (text[i] < 0 || text[i] >= n_texts || key[i] < 0 || key[i] >= n_keys) {
            bad = i;
            break;
        }
        start[text[i] + 2]++;
    }
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "group: pair %zd (text %d, key %d) out of range", bad, text[bad], key[bad]);
        goto done;
    }
    int64_t *out_off = (int64_t *)PyBytes_AS_STRING(offs);
    Py_ssize_t m = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 0; t < n_texts; t++) start[t + 2] += start[t + 1];
    for (Py_ssize_t i = 0; i < n; i++) tmp[start[text[i] + 1]++] = key_ids[key[i]];  /* counting sort by text */
    /* now start[t] = text t's first pair; sort and dedup each text's ids in place, compacting to tmp[0:m] */
    out_off[0] = 0;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        int32_t *a = tmp + start[t];
        Py_ssize_t len = start[t + 1] - start[t];
        if (len > 64) qsort(a, (size_t)len, sizeof(int32_t), cmp_i32);
        else
            for (Py_ssize_t x = 1; x < len; x++) {
                int32_t v = a[x];
                Py_ssize_t y = x;
                for (; y > 0 && a[y - 1] > v; y--) a[y] = a[y - 1];
                a[y] = v;
            }
        for (Py_ssize_t x = 0; x < len; x++)
            if (x == 0 || a[x] != a[x - 1]) tmp[m++] = a[x];
        out_off[t + 1] = m;
    }
    Py_END_ALLOW_THREADS
    ids = PyBytes_FromStringAndSize((const char *)tmp, m * (Py_ssize_t)sizeof(int32_t));
    if (ids) result = PyTuple_Pack(2, offs, ids);
done:
    Py_XDECREF(offs);
    Py_XDECREF(ids);
    free(start);
    free(tmp);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&kb);
    PyBuffer_Release(&ib);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "All (text, key) pairs of a batch of spaced texts, as int32 bytes."},
    {"space_str", space_str, METH_O, "Code points of the spaced texts (a list of str), each followed by SEPARATOR."},
    {"space_utf8", space_utf8, METH_VARARGS, "space_str of UTF-8 texts given as a data buffer and int64 offsets."},
    {"group", group, METH_VARARGS, "(text, key) pairs -> (offsets int64, sorted unique entry ids int32) per text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ngram_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__ngram_kernel(void) { return PyModule_Create(&module); }
