"""bulkops: Magento 2's asynchronous and bulk Web API for any backend."""

__version__ = "0.1.0"
