// Searches operations through magento2-api-wrapper in its integration (OAuth 1.0a) mode.
// Usage: node search.js '<json: url, consumerKey, consumerSecret, accessToken, tokenSecret, searchCriteria>'
const Magento2Api = require('magento2-api-wrapper')

const { searchCriteria, ...api } = JSON.parse(process.argv[2])

new Magento2Api({ api })
  .get('bulk', { params: { searchCriteria } })
  .then((data) => console.log(JSON.stringify(data)))
  .catch((error) => {
    const response = error.response || {}
    console.log(JSON.stringify({ error: error.message, status: response.status, body: response.data }))
    process.exitCode = 1
  })
