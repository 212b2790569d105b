/*
 * Process-wide logging to stderr: one line per event with an RFC 3339 UTC time, a level and
 * the message. Thread-safe (one write(2) per line). Secrets must never be passed here.
 */
#ifndef CLEAVE_LOG_H
#define CLEAVE_LOG_H

#include "util.h"

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

void log_set_level(enum log_level lvl);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *fmt, ...) __printf(2, 3);
/* Like log_msg at LOG_LVL_WARN, with ": strerror(errnum)" appended. */
void log_errno(int errnum, const char *fmt, ...) __printf(2, 3);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)

#endif
