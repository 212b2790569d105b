/*
 * What the employee portal's two pages share (portal.c: the enrollment page and its QR code;
 * portal_device.c: a device's own page): the page frame and small formatting helpers.
 */
#ifndef CLEAVE_API_PORTAL_H
#define CLEAVE_API_PORTAL_H

#include <stddef.h>
#include <stdint.h>

#include "api_priv.h"
#include "html.h"

/* 1 when t is prefix plus base64url (at most 100 characters): only such values are echoed. */
int portal_secret_shaped(const char *t, const char *prefix);
/* "2026-12-02 23:50 UTC", or "never" for 0. */
void portal_time(int64_t t, char *out, size_t cap);
/* Opens a page: doctype, the portal stylesheet, the title and an h1 of it. */
void portal_head(struct html *h, const char *title);
/* Closes the page and makes it the reply with this status (503 when out of memory). */
void portal_reply(struct call *c, struct html *h, int status);

#endif
