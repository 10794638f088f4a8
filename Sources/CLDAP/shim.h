#ifndef ORA_CLDAP_SHIM_H
#define ORA_CLDAP_SHIM_H

#include <lber.h>
#include <ldap.h>

/*
 * LDAP_SASL_SIMPLE is defined as ((char *)0), a pointer macro that the Swift
 * importer drops. Simple binds pass it as the mechanism of ldap_sasl_bind_s.
 */
static inline const char *ora_ldap_sasl_simple(void) {
    return LDAP_SASL_SIMPLE;
}

#endif
