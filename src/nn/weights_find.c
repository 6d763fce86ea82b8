/* weights_find.c - default weights lookup (see weights_find.h). */
#include "nn/weights_find.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "infile.h"
#include "nn/md5.h"
#include "nn/pth_find.h"
#include "nn/registry.h"
#include "nn/safetensors.h"

static int is_file(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_dir(const char *p)
{
	struct stat sb;
	return p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int tl_user_data_dir(char *buf, size_t n)
{
	const char *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
	if (x && x[0] == '/')
		return snprintf(buf, n, "%s/tlkit", x) < (int)n ? 0 : -1;
	if (h && h[0])
		return snprintf(buf, n, "%s/.local/share/tlkit", h) < (int)n ? 0 : -1;
	return -1;
}

/* The registry row of model (its weights and Keras file names); an
 * unknown name has none. */
static const tl_model_info *row_of(const char *model)
{
	static const char *const none[] = {NULL};
	static const tl_model_info nothing = {.name = "", .weights = none, .keras = none};
	const tl_model_info *m = tl_model_find(model);
	return m ? m : &nothing;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* mkdir -p for the user data directory */
static tl_status make_dirs(const char *dir, tl_err *err)
{
	char p[4096];
	snprintf(p, sizeof p, "%s", dir);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				return tl_seterr(err, TL_EIO, "%s: cannot create: %s", p, strerror(errno));
			*s = '/';
		}
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		return tl_seterr(err, TL_EIO, "%s: cannot create: %s", p, strerror(errno));
	return TL_OK;
}

/* XXH3-64 of the whole regular file at path as 16 hex digits, and its
 * size; -1 when it cannot be read (a FIFO or a device is not opened). */
static int file_xxh3(const char *path, char hex[17], uint64_t *size)
{
	int fd = tl_open_input(path, NULL, NULL);
	if (fd < 0)
		return -1;
	XXH3_state_t *xs = XXH3_createState();
	static __thread unsigned char buf[1 << 20];
	ssize_t n = -1;
	uint64_t total = 0;
	if (xs && XXH3_64bits_reset(xs) == XXH_OK)
		while ((n = read(fd, buf, sizeof buf)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			XXH3_64bits_update(xs, buf, (size_t)n);
			total += (uint64_t)n;
		}
	close(fd);
	if (n == 0)
		snprintf(hex, 17, "%016" PRIx64, (uint64_t)XXH3_64bits_digest(xs));
	XXH3_freeState(xs);
	*size = total;
	return n == 0 ? 0 : -1;
}

/* Whether the safetensors at st is an import of exactly the bytes h5
 * holds now: its source_size equals h5's size and its source_xxh3 (or,
 * for imports that predate it, source_md5) equals h5's.  The decision is
 * never made by modification times: a file replaced by one with an older
 * mtime is still told apart. */
static int import_current(const char *st, const char *h5)
{
	tl_st_file *f;
	if (tl_st_open(&f, st, NULL) != TL_OK)
		return 0;
	const char *sz = tl_st_meta(f, "source_size"), *x = tl_st_meta(f, "source_xxh3"),
		   *m = tl_st_meta(f, "source_md5");
	int same = 0;
	struct stat sb;
	if (sz && (x || m) && stat(h5, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    strtoull(sz, NULL, 10) == (unsigned long long)sb.st_size) {
		char hex[33];
		uint64_t size = 0;
		if (x)
			same = file_xxh3(h5, hex, &size) == 0 && !strcmp(hex, x);
		else
			same = tl_file_md5(h5, hex, &size, NULL) == TL_OK && !strcmp(hex, m);
		same = same && size == (uint64_t)sb.st_size;
	}
	tl_st_close(f);
	return same;
}

/* Import h5 into the user data directory as <name>.safetensors, unless
 * that file is already the import of h5's current bytes. */
static tl_status import_once(const char *h5, tl_weights_found *out, tl_err *err)
{
	char dir[4000];
	if (tl_user_data_dir(dir, sizeof dir) != 0)
		return tl_seterr(err, TL_EUSAGE,
				 "%s: found, but neither HOME nor XDG_DATA_HOME is set to import it into; run: tlweights import %s -o FILE.safetensors",
				 h5, h5);
	TL_TRY(make_dirs(dir, err));
	const char *base = strrchr(h5, '/') ? strrchr(h5, '/') + 1 : h5;
	int len = (int)strlen(base) - (ends_with(base, ".h5") ? 3 : 0);
	snprintf(out->path, sizeof out->path, "%s/%.*s.safetensors", dir, len, base);
	snprintf(out->from, sizeof out->from, "%s", h5);
	if (is_file(out->path) && import_current(out->path, h5))
		return TL_OK;
	/* import_current read the old import: it is ours to replace */
	tl_infile_forget(out->path);
	tl_status st = tl_keras_import(h5, out->path, &out->info, err);
	if (st != TL_OK) {
		out->path[0] = 0;
		return st;
	}
	out->imported = 1;
	return TL_OK;
}

/* out->path was found in the user data directory.  When it is the
 * import of a Keras file (metadata source and keras_layout, and the name
 * tlkit gives that import) whose source is still in ~/.keras/models,
 * import that file again unless the import holds its current bytes. */
static tl_status check_import(tl_weights_found *out, tl_err *err)
{
	const char *home = getenv("HOME");
	tl_st_file *f;
	if (!home || !home[0] || tl_st_open(&f, out->path, NULL) != TL_OK)
		return TL_OK; /* not readable: loading it will say why */
	const char *src = tl_st_meta(f, "source"), *lay = tl_st_meta(f, "keras_layout");
	char h5[4096] = "", name[600] = "";
	if (src && lay && !strchr(src, '/') && ends_with(src, ".h5") && strlen(src) < 512) {
		snprintf(h5, sizeof h5, "%s/.keras/models/%s", home, src);
		snprintf(name, sizeof name, "%.*s.safetensors", (int)strlen(src) - 3, src);
	}
	tl_st_close(f);
	const char *base = strrchr(out->path, '/') ? strrchr(out->path, '/') + 1 : out->path;
	if (!h5[0] || strcmp(base, name) != 0)
		return TL_OK;
	struct stat sb;
	if (stat(h5, &sb) != 0)
		return TL_OK; /* the Keras file is gone: the import stands alone */
	if (!S_ISREG(sb.st_mode))
		return tl_seterr(err, TL_EIO, "%s: not a regular file (it is %s)", h5,
				 tl_file_kind(sb.st_mode));
	return import_once(h5, out, err);
}

static int search_dir(const char *dir, const char *const *names, char *out, size_t n)
{
	for (int i = 0; dir && names[i]; i++) {
		snprintf(out, n, "%s/%s", dir, names[i]);
		if (is_file(out))
			return 1;
	}
	return 0;
}

tl_status tl_weights_find(const char *model, const char *datadir, tl_weights_found *out,
			  tl_err *err)
{
	memset(out, 0, sizeof *out);
	const tl_model_info *m = row_of(model);
	const char *const *names = m->weights;
	const char *env = getenv("TL_WEIGHTS");
	struct stat sb;
	if (env && env[0] && stat(env, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
		return tl_seterr(err, TL_EIO, "TL_WEIGHTS: %s: not a regular file (it is %s)", env,
				 tl_file_kind(sb.st_mode));
	if (env && env[0] && is_file(env)) {
		if (ends_with(env, ".h5"))
			return import_once(env, out, err);
		snprintf(out->path, sizeof out->path, "%s", env);
		return TL_OK;
	}
	char user[4000];
	int have_user = tl_user_data_dir(user, sizeof user) == 0;
	const char *dirs[] = {is_dir(env) ? env : NULL, ".", "data", have_user ? user : NULL,
			      datadir};
	for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++)
		if (search_dir(dirs[d], names, out->path, sizeof out->path)) {
			if (have_user && dirs[d] == user)
				return check_import(out, err);
			return TL_OK;
		}
	const char *home = getenv("HOME");
	if (m->keras[0] && home && home[0]) {
		char kdir[4000], h5[4096];
		snprintf(kdir, sizeof kdir, "%s/.keras/models", home);
		if (search_dir(kdir, m->keras, h5, sizeof h5))
			return import_once(h5, out, err);
	}
	return tl_pth_find(model, out, err);
}

int tl_data_file_find(const char *name, const char *datadir, char *buf, size_t n)
{
	const char *env = getenv("TL_WEIGHTS"), *names[] = {name, NULL};
	char user[4000];
	int have_user = tl_user_data_dir(user, sizeof user) == 0;
	const char *dirs[] = {is_dir(env) ? env : NULL, ".", "data", have_user ? user : NULL,
			      datadir};
	for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++)
		if (search_dir(dirs[d], names, buf, n))
			return 1;
	return 0;
}

int tl_weights_exist_for(const char *model)
{
	return row_of(model)->weights[0] != NULL;
}

void tl_weights_where(const char *model, const char *datadir, char *buf, size_t n)
{
	char user[4000];
	if (tl_user_data_dir(user, sizeof user) != 0)
		snprintf(user, sizeof user, "~/.local/share/tlkit");
	const tl_model_info *m = row_of(model);
	if (!m->weights[0]) {
		snprintf(buf, n, "%s has no pretrained weights (train it with -s scratch)", model);
		return;
	}
	char keras[200] = "";
	if (m->keras[0])
		snprintf(keras, sizeof keras, ", and Keras' %s in ~/.keras/models", m->keras[0]);
	char torch[300];
	tl_pth_where(model, torch, sizeof torch);
	snprintf(buf, n, "%s in $TL_WEIGHTS, ., data/, %s, %s%s%s", m->weights[0], user, datadir,
		 keras, torch);
}
