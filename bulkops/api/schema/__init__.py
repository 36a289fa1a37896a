"""Magento's REST schema: Swagger 2.0 documents of the routes served (`/schema`,
`/async/schema`, `/async/bulk/schema`), and the same as one OpenAPI 3.1 document."""
