"""The installations app's extension points: Django signals other apps connect to.

Installations imports none of the apps that listen, so the dependency arrows stay one way. Apps
connect their receivers in ``AppConfig.ready()`` with a ``dispatch_uid``. docs/architecture.md
("Extension points") lists every receiver.

=================================  ====================================================  ==============
signal                             sent                                                  keyword args
=================================  ====================================================  ==============
``installation_activated``         after an install or reinstall has committed           ``installation_id``
``company_settings_changed``       after an admin's settings change has committed        ``company_id``
``installation_uninstalled``       after one user's uninstall committed, the company     ``company_id``
                                   staying (it has other installations)
``vendor_uninstall_starting``      at the start of a vendor-side uninstall, while the    ``installation``
                                   installation's tokens still work (no transaction)
``company_cache_prefixes``         by uninstall, to collect the cache key prefixes that  ``company_pk``,
                                   hold the company's data (or one user's, with          ``pipedrive_company_id``,
                                   ``pipedrive_user_id``); each receiver returns a list  ``pipedrive_user_id``
=================================  ====================================================  ==============

``company_id`` is always the Company row's primary key. Receivers of ``vendor_uninstall_starting``
must not raise (an uninstall is never blocked by them); the others run after commit, where an
exception reaches the caller's logs.
"""

from __future__ import annotations

from django.dispatch import Signal

installation_activated = Signal()
company_settings_changed = Signal()
installation_uninstalled = Signal()
vendor_uninstall_starting = Signal()
company_cache_prefixes = Signal()
