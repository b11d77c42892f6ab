/* geo_countries.h — facts that follow from an ISO 3166-1 country code, for
 * databases that do not carry them (continent, EU membership). Private to
 * the geo module. */
#ifndef VD_CONTEXT_GEO_COUNTRIES_H
#define VD_CONTEXT_GEO_COUNTRIES_H

#include <stdbool.h>
#include <stdint.h>

/* cc: two upper-case ASCII letters. Fills continent ("EU", "AS", ...; "" if
 * the code is unknown) and eu (1 EU-27 member, 0 not; -1 if unknown).
 * Returns whether the code is a known country. */
bool vd_geo_country_info(const char cc[2], char continent[3], int8_t *eu);

#endif
