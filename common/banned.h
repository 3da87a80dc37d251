/* SPDX-License-Identifier: MIT */
#ifndef FL_BANNED_H
#define FL_BANNED_H

/*
 * Functions that make buffer overflows easy.  Including this header last
 * turns any use into a compile error; use snprintf, fl_strlcpy, asprintf.
 */
#undef strcpy
#define strcpy(x, y) sorry_strcpy_is_banned_use_fl_strlcpy
#undef strcat
#define strcat(x, y) sorry_strcat_is_banned_use_snprintf
#undef strncpy
#define strncpy(x, y, n) sorry_strncpy_is_banned_use_fl_strlcpy
#undef strncat
#define strncat(x, y, n) sorry_strncat_is_banned_use_snprintf
#undef sprintf
#define sprintf(...) sorry_sprintf_is_banned_use_snprintf
#undef vsprintf
#define vsprintf(...) sorry_vsprintf_is_banned_use_vsnprintf
#undef gets
#define gets(x) sorry_gets_is_banned_use_fgets

#endif
