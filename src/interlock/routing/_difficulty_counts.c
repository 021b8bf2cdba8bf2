/* The difficulty scorer's counts of an ASCII prompt in one C pass (routing/difficulty_model.py).
 *
 * ascii_counts(text, skip) returns the same 19 counts as difficulty_model._dense_counts(text, None, False, skip)
 * for an ASCII str (None for any other str: the caller takes the Python path), in its order. Python does
 * them in about 35 C calls of 300-1,000 instructions each, most of the scorer's cost on a short prompt; this
 * does them in one scan. The Python code stays the reference: tests/test_difficulty_counts.py compares the
 * two on every routing prompt and on generated texts. `skip` is a bit mask over the counts' positions: the
 * ones set are left at 0, as the Python code leaves a head's unweighted costly counts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

enum {
    C_CHARS, C_WORDS, C_STEM, C_NUMS, C_DISTINCT, C_DECIMALS, C_BIG, C_LONGEST, C_PERCENT, C_DOLLAR,
    C_FRACTION, C_NUMBER_WORDS, C_SENTENCES, C_QUESTIONS, C_MATH, C_UPPER, C_LINES, C_COMMAS, C_LONG_WORDS,
    N_COUNTS
};

/* Byte classes. SPACE is str.isspace() (and the regex \s) on ASCII: \t \n \v \f \r, \x1c-\x1f and space. */
#define LETTER 1
#define UPPER 2
#define DIGIT 4
#define SPACE 8
#define WORD 16 /* the regex \w: letters, digits, underscore */
#define MATH 32 /* = + - * / ^ < > */
static unsigned char cls[256];
/* log1p of the small counts, computed once by the same libm function (so the same values). */
#define LOG1P_TABLE 1024
static double log1p_table[LOG1P_TABLE];

/* The counted words, as difficulty_model's _NUMBER_WORDS and _FRACTION_WORDS (a test compares the lists). */
static const char *const number_words[] = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "fifteen", "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "half", "twice",
    "double", "triple", "third", "quarter", "fourth", "fifth", "dozen", NULL};
static const char *const fraction_words[] = {
    "half", "halves", "third", "thirds", "quarter", "quarters", "fourth", "fourths", "fifth", "fifths",
    "sixth", "sixths", "eighth", "eighths", "tenth", "tenths", NULL};

/* A word list as a small table: words by length (2..15), compared only against runs of their length. */
#define MAX_WORD 16
typedef struct { const char *word[48]; int n; } bucket;
static bucket number_table[MAX_WORD], fraction_table[MAX_WORD];
static char number_plural[64][MAX_WORD]; /* each number word with "s": "ones", "halfs", ... */

static void add(bucket *table, const char *word) {
    size_t len = strlen(word);
    if (len < MAX_WORD && table[len].n < 48)
        table[len].word[table[len].n++] = word;
}

static int in_table(const bucket *table, const char *run, Py_ssize_t len) {
    if (len >= MAX_WORD)
        return 0;
    const bucket *b = &table[len];
    for (int i = 0; i < b->n; i++)
        if (b->word[i][0] == run[0] && memcmp(b->word[i], run, (size_t)len) == 0)
            return 1;
    return 0;
}

typedef struct { Py_ssize_t start, len; uint64_t hash; } span;

/* Distinct numbers: an open-addressing set of spans of `text` (by content). */
static Py_ssize_t distinct_spans(const char *text, const span *spans, Py_ssize_t n) {
    Py_ssize_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    Py_ssize_t stack[64];
    Py_ssize_t *slot = cap <= 64 ? stack : PyMem_Malloc((size_t)cap * sizeof(Py_ssize_t));
    if (slot == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < cap; i++)
        slot[i] = -1;
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t at = (Py_ssize_t)(spans[i].hash & (uint64_t)(cap - 1));
        for (;;) {
            Py_ssize_t j = slot[at];
            if (j < 0) {
                slot[at] = i;
                distinct++;
                break;
            }
            if (spans[j].hash == spans[i].hash && spans[j].len == spans[i].len
                    && memcmp(text + spans[j].start, text + spans[i].start, (size_t)spans[i].len) == 0)
                break;
            at = (at + 1) & (cap - 1);
        }
    }
    if (slot != stack)
        PyMem_Free(slot);
    return distinct;
}

static uint64_t fnv1a(const char *s, Py_ssize_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The 19 counts of the ASCII text s[0:n] into c. Returns -1 with
 * MemoryError set when a buffer could not be grown, else 0. */
static int count_ascii(const char *s, const Py_ssize_t n, Py_ssize_t c[N_COUNTS]) {
    memset(c, 0, N_COUNTS * sizeof(Py_ssize_t));
    c[C_CHARS] = c[C_STEM] = n;

    span stack_spans[64];
    span *spans = stack_spans;
    Py_ssize_t n_spans = 0, cap_spans = 64;
    int has_upper = 0;
    char lower[MAX_WORD];

    for (Py_ssize_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        unsigned char k = cls[ch];
        if (k & LETTER) {
            /* A letter run: a counted word when, lower-cased, it is one; "percent..." counts as percent. */
            Py_ssize_t j = i;
            while (j < n && (cls[(unsigned char)s[j]] & LETTER)) {
                if (cls[(unsigned char)s[j]] & UPPER)
                    has_upper = 1;
                j++;
            }
            Py_ssize_t len = j - i;
            if (len < MAX_WORD) {
                for (Py_ssize_t m = 0; m < len; m++)
                    lower[m] = (char)(s[i + m] | 0x20);
                c[C_NUMBER_WORDS] += in_table(number_table, lower, len);
                c[C_FRACTION] += in_table(fraction_table, lower, len);
            }
            if (len >= 7) {
                static const char percent[] = "percent";
                int match = 1;
                for (int m = 0; m < 7; m++)
                    if ((s[i + m] | 0x20) != percent[m]) {
                        match = 0;
                        break;
                    }
                c[C_PERCENT] += match;
            }
            i = j;
            continue;
        }
        if (k & DIGIT) {
            /* A number as [0-9][0-9]*(?:[.,][0-9]+)*, and a fraction as \d\d*\/\d+ from the same digits. */
            Py_ssize_t j = i;
            while (j < n && (cls[(unsigned char)s[j]] & DIGIT))
                j++;
            while (j + 1 < n && (s[j] == '.' || s[j] == ',') && (cls[(unsigned char)s[j + 1]] & DIGIT)) {
                j++;
                while (j < n && (cls[(unsigned char)s[j]] & DIGIT))
                    j++;
            }
            if (n_spans == cap_spans) {
                span *grown = PyMem_Malloc((size_t)cap_spans * 2 * sizeof(span));
                if (grown == NULL) {
                    if (spans != stack_spans)
                        PyMem_Free(spans);
                    PyErr_NoMemory();
                    return -1;
                }
                memcpy(grown, spans, (size_t)n_spans * sizeof(span));
                if (spans != stack_spans)
                    PyMem_Free(spans);
                spans = grown;
                cap_spans *= 2;
            }
            Py_ssize_t len = j - i;
            spans[n_spans].start = i;
            spans[n_spans].len = len;
            spans[n_spans].hash = fnv1a(s + i, len);
            n_spans++;
            if (memchr(s + i, '.', (size_t)len) != NULL)
                c[C_DECIMALS]++;
            if (len > 3)
                c[C_BIG]++;
            if (len > c[C_LONGEST])
                c[C_LONGEST] = len;
            i = j;
            continue;
        }
        switch (ch) {
        case '%': c[C_PERCENT]++; break;
        case '$': c[C_DOLLAR]++; break;
        case '?': c[C_QUESTIONS]++; break;
        case '\n': c[C_LINES]++; break;
        default: break;
        }
        i++;
    }
    c[C_NUMS] = n_spans;
    if (n_spans) {
        c[C_DISTINCT] = distinct_spans(s, spans, n_spans);
        if (spans != stack_spans)
            PyMem_Free(spans);
        if (c[C_DISTINCT] < 0) {
            PyErr_NoMemory();
            return -1;
        }
    }

    /* Counts by single bytes that the runs above step over (commas inside numbers, math signs, ...): one
     * more tight pass, cheaper than tracking them inside every branch. */
    Py_ssize_t commas = 0, math = 0, sentences = 0, words = 0, long_words = 0, slash = 0;
    Py_ssize_t word_len = 0;
    /* Slash fractions, \d\d*\/\d+, as the regex finds them (without overlap): a '/' between digits, unless
     * the digits before it are the previous fraction's denominator ("1/2/3" is one). They are counted here,
     * not with the numbers: a fraction's digits may span a number's separators ("1,2/3"). */
    Py_ssize_t denominator_end = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        unsigned char k = cls[ch];
        if (k & SPACE) {
            if (word_len > 7)
                long_words++;
            word_len = 0;
            continue;
        }
        if (word_len++ == 0)
            words++;
        if (k & MATH)
            math++;
        if (ch == ',')
            commas++;
        else if ((ch == '.' || ch == '?' || ch == '!') && (i + 1 == n || (cls[(unsigned char)s[i + 1]] & SPACE)))
            sentences++;
        else if (ch == '/' && i > 0 && (cls[(unsigned char)s[i - 1]] & DIGIT) && i + 1 < n
                 && (cls[(unsigned char)s[i + 1]] & DIGIT) && i != denominator_end) {
            slash++;
            Py_ssize_t j = i + 1;
            while (j < n && (cls[(unsigned char)s[j]] & DIGIT))
                j++;
            denominator_end = j;
        }
    }
    if (word_len > 7)
        long_words++;
    c[C_COMMAS] = commas;
    c[C_WORDS] = words;
    c[C_MATH] = math;
    c[C_SENTENCES] = sentences;
    c[C_LONG_WORDS] = long_words;
    c[C_FRACTION] += slash;

    /* Upper-case words, [A-Z](?<!\w.)[A-Z]{2,}(?!\w): a run of three or more capitals with no word character
     * on either side. Only when the text has a capital letter at all. */
    if (has_upper) {
        for (Py_ssize_t i = 0; i < n;) {
            if (!(cls[(unsigned char)s[i]] & UPPER)) {
                i++;
                continue;
            }
            Py_ssize_t j = i;
            while (j < n && (cls[(unsigned char)s[j]] & UPPER))
                j++;
            if (j - i >= 3 && (i == 0 || !(cls[(unsigned char)s[i - 1]] & WORD))
                    && (j == n || !(cls[(unsigned char)s[j]] & WORD)))
                c[C_UPPER]++;
            i = j;
        }
    }

    return 0;
}

/* The counts of args[0] with args[1]'s skip bits (the two arguments both functions start with; `usage`
 * names the function's arguments for the TypeError of a wrong count): 0 with `c` and `skip` set, 1 for a
 * text that is not ASCII (the caller returns None), -1 with an exception set. */
static int counts_of(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected, const char *usage,
                     Py_ssize_t c[N_COUNTS], long *skip) {
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", usage, expected);
        return -1;
    }
    PyObject *text = args[0];
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be a str");
        return -1;
    }
    if (!PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "skip must be an int");
        return -1;
    }
    *skip = PyLong_AsLong(args[1]);
    if (*skip == -1 && PyErr_Occurred())
        return -1;
    if (!PyUnicode_IS_ASCII(text))
        return 1;
    return count_ascii((const char *)PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text), c);
}

/* ascii_counts(text, skip): the counts as a tuple of ints (skip's bits at 0), or None for a text not ASCII. */
static PyObject *ascii_counts(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    Py_ssize_t c[N_COUNTS];
    long skip = 0;
    int kind = counts_of(args, nargs, 2, "ascii_counts(text, skip)", c, &skip);
    if (kind != 0)
        return kind < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *out = PyTuple_New(N_COUNTS);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < N_COUNTS; i++) {
        PyObject *v = PyLong_FromSsize_t((skip >> i) & 1 ? 0 : c[i]);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, v);
    }
    return out;
}

/* ascii_sums(text, skip, weights): a head of one or two outputs evaluated on the counts, as
 * difficulty_model._Head.gain's table path does: weights is 2 + 2 * 19 doubles (native order), the two
 * biases, then each count's two weights; each output is its bias plus weight * log1p(count) over the
 * non-zero counts, added in the counts' order, one rounding per operation (the products are stored before
 * they are added, so that no compiler fuses them into one multiply-add, which rounds once and differs).
 * Returns [output 0, output 1], or None for a text not ASCII. */
static PyObject *ascii_sums(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    Py_ssize_t c[N_COUNTS];
    long skip = 0;
    if (nargs == 3 && (!PyBytes_Check(args[2])
                       || PyBytes_GET_SIZE(args[2]) != (Py_ssize_t)((2 + 2 * N_COUNTS) * sizeof(double)))) {
        PyErr_SetString(PyExc_ValueError, "weights must be bytes of 40 doubles");
        return NULL;
    }
    int kind = counts_of(args, nargs, 3, "ascii_sums(text, skip, weights)", c, &skip);
    if (kind != 0)
        return kind < 0 ? NULL : Py_NewRef(Py_None);
    double w[2 + 2 * N_COUNTS];
    memcpy(w, PyBytes_AS_STRING(args[2]), sizeof w);
    double out0 = w[0], out1 = w[1];
    for (int i = 0; i < N_COUNTS; i++) {
        if (c[i] == 0 || (skip >> i) & 1)
            continue;
        double log = c[i] < LOG1P_TABLE ? log1p_table[c[i]] : log1p((double)c[i]);
        volatile double p0 = w[2 + 2 * i] * log, p1 = w[3 + 2 * i] * log;
        out0 += p0;
        out1 += p1;
    }
    PyObject *a = PyFloat_FromDouble(out0), *b = PyFloat_FromDouble(out1);
    if (a == NULL || b == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyObject *list = PyList_New(2);
    if (list == NULL) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyList_SET_ITEM(list, 0, a);
    PyList_SET_ITEM(list, 1, b);
    return list;
}

static PyMethodDef methods[] = {
    {"ascii_counts", (PyCFunction)(void (*)(void))ascii_counts, METH_FASTCALL,
     "ascii_counts(text, skip): the difficulty scorer's 19 counts of an ASCII text, or None for another."},
    {"ascii_sums", (PyCFunction)(void (*)(void))ascii_sums, METH_FASTCALL,
     "ascii_sums(text, skip, weights): a one- or two-output head's outputs on an ASCII text, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_difficulty_counts", "The difficulty scorer's counts in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

static PyObject *word_list(const char *const *words) {
    Py_ssize_t n = 0;
    while (words[n] != NULL)
        n++;
    PyObject *out = PyTuple_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyUnicode_FromString(words[i]);
        if (w == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, w);
    }
    return out;
}

PyMODINIT_FUNC PyInit__difficulty_counts(void) {
    for (int ch = 0; ch < 256; ch++) {
        unsigned char k = 0;
        if (ch >= 'a' && ch <= 'z')
            k |= LETTER | WORD;
        if (ch >= 'A' && ch <= 'Z')
            k |= LETTER | UPPER | WORD;
        if (ch >= '0' && ch <= '9')
            k |= DIGIT | WORD;
        if (ch == '_')
            k |= WORD;
        if ((ch >= 9 && ch <= 13) || (ch >= 28 && ch <= 32))
            k |= SPACE;
        if (strchr("=+-*/^<>", ch) != NULL && ch != 0)
            k |= MATH;
        cls[ch] = k;
    }
    for (int i = 0; i < LOG1P_TABLE; i++)
        log1p_table[i] = log1p((double)i);
    memset(number_table, 0, sizeof number_table);
    memset(fraction_table, 0, sizeof fraction_table);
    int plural = 0;
    for (int i = 0; number_words[i] != NULL; i++) {
        add(number_table, number_words[i]);
        size_t len = strlen(number_words[i]);
        if (len + 2 <= MAX_WORD && plural < 64) {
            memcpy(number_plural[plural], number_words[i], len);
            number_plural[plural][len] = 's';
            number_plural[plural][len + 1] = '\0';
            add(number_table, number_plural[plural++]);
        }
    }
    for (int i = 0; fraction_words[i] != NULL; i++)
        add(fraction_table, fraction_words[i]);

    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    PyObject *numbers = word_list(number_words), *fractions = word_list(fraction_words);
    if (numbers == NULL || fractions == NULL || PyModule_AddObject(m, "NUMBER_WORDS", numbers) < 0) {
        Py_XDECREF(numbers);
        Py_XDECREF(fractions);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "FRACTION_WORDS", fractions) < 0) {
        Py_DECREF(fractions);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
