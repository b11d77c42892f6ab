#include "context/attrs.h"

#include <string.h>

static const vd_attr_info attr_table[VD_ATTR__COUNT] = {
#define VD_ATTR_ROW(id, name, type, fam) [VD_ATTR_##id] = { name, type, fam },
    VD_ATTR_LIST(VD_ATTR_ROW)
#undef VD_ATTR_ROW
};

const vd_attr_info *vd_attr_info_get(unsigned id)
{
    return id < VD_ATTR__COUNT ? &attr_table[id] : NULL;
}

bool vd_attr_resolve(vd_str name, vd_attr_ref *out)
{
    for (unsigned i = 0; i < VD_ATTR__COUNT; i++) {
        const char *n = attr_table[i].name;
        size_t len = strlen(n);
        if (n[len - 1] == '.') {
            if (name.n > len && memcmp(name.p, n, len) == 0) {
                out->id = (uint8_t)i;
                out->sub = vd_str_make(name.p + len, name.n - len);
                return true;
            }
        } else if (name.n == len && memcmp(name.p, n, len) == 0) {
            out->id = (uint8_t)i;
            out->sub = VD_STR_NULL;
            return true;
        }
    }
    return false;
}
