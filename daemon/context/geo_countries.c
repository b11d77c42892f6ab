/* geo_countries.c — ISO 3166-1 alpha-2 -> continent (GeoNames' assignment,
 * which MaxMind's databases use: TR and the Caucasus in AS, RU in EU, the
 * Caribbean and Central America in NA) and EU-27 membership. */
#include "context/geo_countries.h"

#include <stdlib.h>
#include <string.h>

/* Sorted by code: "CCcc" = country, continent. Binary-searched. */
static const char k_continents[][5] = {
    "ADEU", "AEAS", "AFAS", "AGNA", "AINA", "ALEU", "AMAS", "AOAF", "AQAN", "ARSA", "ASOC",
    "ATEU", "AUOC", "AWNA", "AXEU", "AZAS", "BAEU", "BBNA", "BDAS", "BEEU", "BFAF", "BGEU",
    "BHAS", "BIAF", "BJAF", "BLNA", "BMNA", "BNAS", "BOSA", "BQNA", "BRSA", "BSNA", "BTAS",
    "BVAN", "BWAF", "BYEU", "BZNA", "CANA", "CCAS", "CDAF", "CFAF", "CGAF", "CHEU", "CIAF",
    "CKOC", "CLSA", "CMAF", "CNAS", "COSA", "CRNA", "CUNA", "CVAF", "CWNA", "CXOC", "CYEU",
    "CZEU", "DEEU", "DJAF", "DKEU", "DMNA", "DONA", "DZAF", "ECSA", "EEEU", "EGAF", "EHAF",
    "ERAF", "ESEU", "ETAF", "FIEU", "FJOC", "FKSA", "FMOC", "FOEU", "FREU", "GAAF", "GBEU",
    "GDNA", "GEAS", "GFSA", "GGEU", "GHAF", "GIEU", "GLNA", "GMAF", "GNAF", "GPNA", "GQAF",
    "GREU", "GSAN", "GTNA", "GUOC", "GWAF", "GYSA", "HKAS", "HMAN", "HNNA", "HREU", "HTNA",
    "HUEU", "IDAS", "IEEU", "ILAS", "IMEU", "INAS", "IOAS", "IQAS", "IRAS", "ISEU", "ITEU",
    "JEEU", "JMNA", "JOAS", "JPAS", "KEAF", "KGAS", "KHAS", "KIOC", "KMAF", "KNNA", "KPAS",
    "KRAS", "KWAS", "KYNA", "KZAS", "LAAS", "LBAS", "LCNA", "LIEU", "LKAS", "LRAF", "LSAF",
    "LTEU", "LUEU", "LVEU", "LYAF", "MAAF", "MCEU", "MDEU", "MEEU", "MFNA", "MGAF", "MHOC",
    "MKEU", "MLAF", "MMAS", "MNAS", "MOAS", "MPOC", "MQNA", "MRAF", "MSNA", "MTEU", "MUAF",
    "MVAS", "MWAF", "MXNA", "MYAS", "MZAF", "NAAF", "NCOC", "NEAF", "NFOC", "NGAF", "NINA",
    "NLEU", "NOEU", "NPAS", "NROC", "NUOC", "NZOC", "OMAS", "PANA", "PESA", "PFOC", "PGOC",
    "PHAS", "PKAS", "PLEU", "PMNA", "PNOC", "PRNA", "PSAS", "PTEU", "PWOC", "PYSA", "QAAS",
    "REAF", "ROEU", "RSEU", "RUEU", "RWAF", "SAAS", "SBOC", "SCAF", "SDAF", "SEEU", "SGAS",
    "SHAF", "SIEU", "SJEU", "SKEU", "SLAF", "SMEU", "SNAF", "SOAF", "SRSA", "SSAF", "STAF",
    "SVNA", "SXNA", "SYAS", "SZAF", "TCNA", "TDAF", "TFAN", "TGAF", "THAS", "TJAS", "TKOC",
    "TLOC", "TMAS", "TNAF", "TOOC", "TRAS", "TTNA", "TVOC", "TWAS", "TZAF", "UAEU", "UGAF",
    "UMOC", "USNA", "UYSA", "UZAS", "VAEU", "VCNA", "VESA", "VGNA", "VINA", "VNAS", "VUOC",
    "WFOC", "WSOC", "XKEU", "YEAS", "YTAF", "ZAAF", "ZMAF", "ZWAF",
};

/* EU-27 (since 2020-02-01), sorted. */
static const char k_eu27[][3] = {
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
};

static int cmp2(const void *key, const void *elem)
{
    return memcmp(key, elem, 2);
}

bool vd_geo_country_info(const char cc[2], char continent[3], int8_t *eu)
{
    continent[0] = '\0';
    *eu = -1;
    const char *row = bsearch(cc, k_continents, sizeof k_continents / sizeof k_continents[0],
                              sizeof k_continents[0], cmp2);
    if (!row)
        return false;
    continent[0] = row[2];
    continent[1] = row[3];
    continent[2] = '\0';
    *eu = bsearch(cc, k_eu27, sizeof k_eu27 / sizeof k_eu27[0], sizeof k_eu27[0], cmp2) ? 1 : 0;
    return true;
}
