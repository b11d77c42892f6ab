/* dashboard.c — embeds net/dashboard.html into the binary, so the stats
 * port serves its page with no files to install (the Makefile makes this
 * object depend on the HTML). */
#include "net/http_stats.h"

__asm__(".section .rodata\n"
        ".global vd_dashboard_html\n"
        ".type vd_dashboard_html, @object\n"
        "vd_dashboard_html:\n"
        ".incbin \"daemon/net/dashboard.html\"\n"
        ".global vd_dashboard_html_end\n"
        ".type vd_dashboard_html_end, @object\n"
        "vd_dashboard_html_end:\n"
        ".byte 0\n"
        ".previous\n");
