/* source.c - the list of data sources and the probe that picks one (see
 * source.h). */
#include "data/source.h"

#include <errno.h>
#include <string.h>

extern const tl_source tl_source_pycifar; /* src_pycifar.c (not yet in source.h) */
static const tl_source *const sources[] = {
	&tl_source_pycifar, /* before cifar-binary, whose probe takes any file */
	&tl_source_cifar,
	&tl_source_folder,
};

const tl_source *tl_source_find(const char *path, tl_err *err)
{
	struct stat sb;
	if (stat(path, &sb) != 0) {
		tl_seterr(err, TL_EIO, "%s: cannot open input: %s", path, strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
		if (sources[i]->probe(path, &sb))
			return sources[i];
	tl_seterr(err, TL_EFORMAT,
		  "%s: not a data source (expected a CIFAR-10/100 binary archive or folder, or a folder of class subfolders)",
		  path);
	return NULL;
}
