/* pth_find.c - the torch hub cache lookup (see pth_find.h). */
#include "nn/pth_find.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "infile.h"
#include "nn/pth.h"
#include "nn/safetensors.h"

/* torch.hub's checkpoint folders: [0] $TORCH_HOME's, [1] the default;
 * empty when not set. */
static void hub_dirs(char d[2][4000])
{
	const char *th = getenv("TORCH_HOME"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	d[0][0] = d[1][0] = 0;
	if (th && th[0])
		snprintf(d[0], 4000, "%s/hub/checkpoints", th);
	if (x && x[0] == '/')
		snprintf(d[1], 4000, "%s/torch/hub/checkpoints", x);
	else if (h && h[0])
		snprintf(d[1], 4000, "%s/.cache/torch/hub/checkpoints", h);
	if (!strcmp(d[0], d[1]))
		d[1][0] = 0;
}

/* Whether the safetensors at st is the import of exactly the bytes of
 * the regular file pth (its source_size and source_xxh3). */
static int import_current(const char *st, const char *pth)
{
	tl_st_file *f;
	if (tl_st_open(&f, st, NULL) != TL_OK)
		return 0;
	const char *sz = tl_st_meta(f, "source_size"), *x = tl_st_meta(f, "source_xxh3");
	int same = 0;
	struct stat sb;
	int fd = sz && x ? tl_open_input(pth, &sb, NULL) : -1;
	if (fd >= 0 && sb.st_size > 0 && strtoull(sz, NULL, 10) == (unsigned long long)sb.st_size) {
		void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			char hex[17];
			snprintf(hex, sizeof hex, "%016" PRIx64, (uint64_t)XXH3_64bits(m, (size_t)sb.st_size));
			same = !strcmp(hex, x);
			munmap(m, (size_t)sb.st_size);
		}
	}
	if (fd >= 0)
		close(fd);
	tl_st_close(f);
	return same;
}

static tl_status make_dirs(const char *dir, tl_err *err)
{
	char p[4096];
	snprintf(p, sizeof p, "%s", dir);
	for (char *s = p + 1;; s++)
		if (*s == '/' || !*s) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				return tl_seterr(err, TL_EIO, "%s: cannot create: %s", p, strerror(errno));
			if (!(*s = c))
				return TL_OK;
		}
}

/* The import's path for a torchvision file name: USERDIR/STEM.safetensors. */
static int import_path(const char *user, const char *name, char *out, size_t n)
{
	const char *dot = strrchr(name, '.');
	return snprintf(out, n, "%s/%.*s.safetensors", user, (int)(dot - name), name) < (int)n;
}

tl_status tl_pth_find(const char *model, tl_weights_found *out, tl_err *err)
{
	char dirs[2][4000], user[4000];
	int have_user = tl_user_data_dir(user, sizeof user) == 0;
	hub_dirs(dirs);
	const char *name;
	for (int d = 0; d < 2; d++)
		for (int i = 0; dirs[d][0] && (name = tl_pth_file_of(model, i)); i++) {
			char pth[4096];
			struct stat sb;
			if (snprintf(pth, sizeof pth, "%s/%s", dirs[d], name) >= (int)sizeof pth ||
			    stat(pth, &sb) != 0)
				continue;
			if (!S_ISREG(sb.st_mode))
				return tl_seterr(err, TL_EIO, "%s: not a regular file (it is %s)", pth,
						 tl_file_kind(sb.st_mode));
			if (!have_user)
				return tl_seterr(err, TL_EUSAGE,
						 "%s: found, but neither HOME nor XDG_DATA_HOME is set to import it into; run: tlweights import %s -o FILE.safetensors",
						 pth, pth);
			TL_TRY(make_dirs(user, err));
			if (!import_path(user, name, out->path, sizeof out->path))
				return tl_seterr(err, TL_EUSAGE, "%s: path too long", user);
			snprintf(out->from, sizeof out->from, "%s", pth);
			struct stat ib;
			if (stat(out->path, &ib) == 0 && S_ISREG(ib.st_mode) && import_current(out->path, pth))
				return TL_OK;
			tl_infile_forget(out->path); /* an old import, ours to replace */
			tl_status st = tl_pth_import(pth, out->path, &out->pth_info, err);
			if (st != TL_OK) {
				out->path[0] = 0;
				return st;
			}
			out->imported = out->pth = 1;
			return TL_OK;
		}
	/* the .pth is gone, its import stands alone */
	for (int i = 0; have_user && (name = tl_pth_file_of(model, i)); i++) {
		struct stat sb;
		if (import_path(user, name, out->path, sizeof out->path) && stat(out->path, &sb) == 0 &&
		    S_ISREG(sb.st_mode))
			return TL_OK;
	}
	out->path[0] = 0;
	return TL_OK;
}

void tl_pth_where(const char *model, char *buf, size_t n)
{
	const char *name = tl_pth_file_of(model, 0);
	if (!name) {
		buf[0] = 0;
		return;
	}
	snprintf(buf, n, ", and torchvision's %s in $TORCH_HOME/hub/checkpoints or ~/.cache/torch/hub/checkpoints",
		 name);
}
