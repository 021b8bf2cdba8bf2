/* The guardrails' gates in one pass each (guardrails/gates.py).
 *
 * dlp_mask(text) returns the same bit mask as gates.dlp_mask_py(text): one bit per rule finder, set when its
 * trigger occurs in the text. Python tests each trigger with its own C call (300-1,500 instructions each,
 * some twenty a text), most of a clean text's scan; this reads the text once. The Python stays the
 * reference: tests/test_guardrails_gates.py compares the two on the guardrail data sets and on generated texts.
 * The text is read as text.encode("ascii", "replace") gives it: one byte per character, anything that is
 * not ASCII a '?'.
 *
 * views_mask(norm, raw) returns the same bit mask as gates.views_mask_py(norm, raw): which extra views of a
 * text the injection rules read (leetspeak mapped, rot13 decoded, payloads decoded).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { LONG_TOKEN = 1, SLACK = 2, PRIVATE_KEY = 4, ASSIGNED = 8, EMAIL = 16, NUMERIC = 32, IPV6 = 64, ALL = 127 };

/* secrets.KEYWORDS, in its order (a test compares the lists). */
static const char *const keywords[] = {"pass", "pwd", "secret", "token", "key", "credential", NULL};
static size_t keyword_len[8];

/* Byte classes. */
#define KEYCH 1 /* secrets._KEY_CLASSES: ASCII letters and digits, _ - + / */
#define RUNCH 2 /* pii._NUM_CLASSES' run characters: digits and " -.()/:" */
#define DIGIT 4
#define SPECIAL 8 /* where a search begins: @ : h P and the keywords' first letters, either case */
static unsigned char cls[256];
/* The keywords (bits by index in keywords[]) that begin with a byte, either case. */
static unsigned int keywords_at[256];

static inline unsigned char byte_at(int kind, const void *data, Py_ssize_t i) {
    Py_UCS4 c = PyUnicode_READ(kind, data, i);
    return c < 128 ? (unsigned char)c : (unsigned char)'?';
}

static inline unsigned char fold(unsigned char b) {
    return (b >= 'A' && b <= 'Z') ? (unsigned char)(b + 32) : b;
}

/* Whether `word` (len bytes) occurs at i; `folded`: ASCII letters of the text compared lower-cased. */
static inline int occurs(int kind, const void *data, Py_ssize_t n, Py_ssize_t i, const char *word, size_t len,
                         int folded) {
    if ((size_t)(n - i) < len)
        return 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char b = byte_at(kind, data, i + (Py_ssize_t)k);
        if ((folded ? fold(b) : b) != (unsigned char)word[k])
            return 0;
    }
    return 1;
}

/* The scan, inlined per string kind so the one-byte case reads bytes directly. */
static inline int scan(int kind, const void *data, Py_ssize_t n) {
    int mask = 0;
    Py_ssize_t key_run = 0, last_colon = -6;
    int digits = 0, dots = 0;
    for (Py_ssize_t i = 0; i < n && mask != ALL; i++) {
        unsigned char b = byte_at(kind, data, i);
        unsigned char k = cls[b];
        if (k & KEYCH) {
            if (++key_run >= 16)
                mask |= LONG_TOKEN;
        } else {
            key_run = 0;
        }
        if (k & RUNCH) {
            digits += (k & DIGIT) != 0;
            dots += b == '.';
            if (digits >= 7 || (digits >= 2 && dots >= 3))
                mask |= NUMERIC;
        } else if (digits | dots) {
            digits = dots = 0;
        }
        if (!(k & SPECIAL))
            continue;
        if (b == '@') {
            mask |= EMAIL;
        } else if (b == ':') {
            if (i - last_colon <= 5)
                mask |= IPV6;
            last_colon = i;
        } else {
            if (b == 'h' && !(mask & SLACK) && occurs(kind, data, n, i, "hooks.slack.com", 15, 0))
                mask |= SLACK;
            if (b == 'P' && !(mask & PRIVATE_KEY) && occurs(kind, data, n, i, "PRIVATE KEY", 11, 0))
                mask |= PRIVATE_KEY;
            unsigned int words = mask & ASSIGNED || i + 1 >= n ? 0 : keywords_at[b];
            if (words != 0) {
                /* The second letter first: most letters that begin a keyword begin none here. */
                unsigned char second = fold(byte_at(kind, data, i + 1));
                for (int w = 0; words != 0; w++, words >>= 1) {
                    if ((words & 1) && (unsigned char)keywords[w][1] == second
                        && occurs(kind, data, n, i, keywords[w], keyword_len[w], 1)) {
                        mask |= ASSIGNED;
                        break;
                    }
                }
            }
        }
    }
    return mask;
}

static PyObject *dlp_mask(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "dlp_mask() takes a str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int mask;
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        mask = scan(PyUnicode_1BYTE_KIND, data, n);
        break;
    case PyUnicode_2BYTE_KIND:
        mask = scan(PyUnicode_2BYTE_KIND, data, n);
        break;
    default:
        mask = scan(PyUnicode_4BYTE_KIND, data, n);
        break;
    }
    return PyLong_FromLong(mask);
}

/* The injection detector's views (gates.LEET, ROT13, PAYLOAD). */
enum { LEET = 1, ROT13 = 2, PAYLOAD = 4 };
/* normalize.ROT13_HINTS, in its order (a test compares the lists). */
static const char *const hints[] = {"vtaber", "vafgehpgvba", "cebzcg", "cnffjbeq", NULL};
/* normalize._LEET_CLASSES: 'a' for a lower-case letter, '1' for a leetspeak digit or symbol, else ' '. */
static unsigned char leet_class[256];
/* normalize._B64_CLASSES: the base64 and hex alphabet (with "_-=") */
static unsigned char b64[256];
/* Whether some hint begins with a byte (from hints[] at init). */
static unsigned char hint_start[256];

/* bytes.count(pattern) over the leet classes of s: non-overlapping occurrences, leftmost first. */
static Py_ssize_t count_shape(const unsigned char *s, Py_ssize_t n, const char *pattern, Py_ssize_t len) {
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i + len <= n;) {
        Py_ssize_t k = 0;
        while (k < len && leet_class[s[i + k]] == (unsigned char)pattern[k])
            k++;
        if (k == len) {
            count++;
            i += len;
        } else {
            i++;
        }
    }
    return count;
}

static PyObject *views_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "views_mask() takes two bytes: the normalised text and the raw text");
        return NULL;
    }
    const unsigned char *norm = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), m = PyBytes_GET_SIZE(args[1]);
    int mask = count_shape(norm, n, "a1a", 3) + count_shape(norm, n, "a11a", 4) >= 2 ? LEET : 0;
    for (Py_ssize_t i = 0; i < n && !(mask & ROT13); i++) {
        if (!hint_start[norm[i]])
            continue;
        for (int h = 0; hints[h] != NULL; h++) {
            size_t len = strlen(hints[h]);
            if (hints[h][0] == (char)norm[i] && (size_t)(n - i) >= len && memcmp(norm + i, hints[h], len) == 0) {
                mask |= ROT13;
                break;
            }
        }
    }
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        run = b64[raw[i]] ? run + 1 : 0;
        if (run >= 16) {
            mask |= PAYLOAD;
            break;
        }
    }
    return PyLong_FromLong(mask);
}

static PyMethodDef methods[] = {
    {"views_mask", (PyCFunction)(void (*)(void))views_mask, METH_FASTCALL,
     "views_mask(norm, raw, /) -> int: the injection detector's extra views (gates.views_mask_py)."},
    {"dlp_mask", dlp_mask, METH_O, "dlp_mask(text, /) -> int: the DLP finders' triggers in text (gates.dlp_mask_py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_gates", "The guardrails' gates in one pass each (guardrails/gates.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

/* module.name = a tuple of the words (NULL-terminated list); -1 on failure. */
static int add_words(PyObject *module, const char *name, const char *const *list) {
    Py_ssize_t n = 0;
    while (list[n] != NULL)
        n++;
    PyObject *out = PyTuple_New(n);
    if (out == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyUnicode_FromString(list[i]);
        if (w == NULL) {
            Py_DECREF(out);
            return -1;
        }
        PyTuple_SET_ITEM(out, i, w);
    }
    if (PyModule_AddObject(module, name, out) < 0) {
        Py_DECREF(out);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__gates(void) {
    for (int ch = 0; ch < 256; ch++) {
        unsigned char k = 0;
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (alnum || ch == '_' || ch == '-' || ch == '+' || ch == '/')
            k |= KEYCH;
        if (ch >= '0' && ch <= '9')
            k |= RUNCH | DIGIT;
        if (ch == ' ' || ch == '-' || ch == '.' || ch == '(' || ch == ')' || ch == '/' || ch == ':')
            k |= RUNCH;
        cls[ch] = k;
    }
    cls['@'] |= SPECIAL;
    cls[':'] |= SPECIAL;
    cls['h'] |= SPECIAL;
    cls['P'] |= SPECIAL;
    for (int w = 0; keywords[w] != NULL; w++) {
        unsigned char first = (unsigned char)keywords[w][0];
        keyword_len[w] = strlen(keywords[w]);
        keywords_at[first] |= 1u << w;
        keywords_at[first - 32] |= 1u << w;
        cls[first] |= SPECIAL;
        cls[first - 32] |= SPECIAL;
    }
    for (int ch = 0; ch < 256; ch++) {
        leet_class[ch] = (ch >= 'a' && ch <= 'z') ? 'a' : (ch != 0 && strchr("013457@$", ch) != NULL) ? '1' : ' ';
        b64[ch] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                  || (ch != 0 && strchr("+/_-=", ch) != NULL);
    }
    for (int h = 0; hints[h] != NULL; h++)
        hint_start[(unsigned char)hints[h][0]] = 1;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (add_words(m, "HINTS", hints) < 0 || add_words(m, "KEYWORDS", keywords) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
