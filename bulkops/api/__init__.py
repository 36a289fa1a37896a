"""The HTTP interface: Magento's REST paths, auth and error bodies, over the services."""
