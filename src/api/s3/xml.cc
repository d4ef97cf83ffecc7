#include "api/s3/xml.h"

#include <charconv>
#include <cstring>
#include <pugixml.hpp>

#include "api/protocol.h"

namespace inferd::api::s3 {
namespace {

Error MalformedXml(std::string_view detail) {
  return Error(Errc::kSerialization,
               "The XML you provided was not well-formed or did not validate against our "
               "published schema" +
                   (detail.empty() ? std::string(".") : ": " + std::string(detail) + "."),
               "MalformedXML");
}

// Element name without a namespace prefix ("s3:Part" → "Part").
std::string_view LocalName(const pugi::xml_node& node) {
  std::string_view name = node.name();
  size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node Child(const pugi::xml_node& parent, std::string_view name) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && LocalName(c) == name) return c;
  }
  return {};
}

// Text content of an element (its PCDATA/CDATA children, whitespace kept).
std::string Text(const pugi::xml_node& node) {
  std::string out;
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  }
  return out;
}

std::string_view TrimWs(std::string_view s) {
  while (!s.empty() && std::strchr(" \t\r\n", s.front())) s.remove_prefix(1);
  while (!s.empty() && std::strchr(" \t\r\n", s.back())) s.remove_suffix(1);
  return s;
}

Result<pugi::xml_node> ParseRoot(pugi::xml_document& doc, std::string_view body,
                                 std::string_view root_name) {
  // parse_ws_pcdata_single keeps a key made only of spaces; escapes are decoded.
  pugi::xml_parse_result parsed =
      doc.load_buffer(body.data(), body.size(), pugi::parse_default | pugi::parse_ws_pcdata_single,
                      pugi::encoding_utf8);
  if (!parsed) return MalformedXml(parsed.description());
  pugi::xml_node root = doc.document_element();
  if (!root || LocalName(root) != root_name) {
    return MalformedXml("the root element must be " + std::string(root_name));
  }
  return root;
}

}  // namespace

// ---- writer ----

XmlWriter::XmlWriter(std::string_view root) : root_(root) {
  out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<";
  out_.append(root).append(" xmlns=\"").append(kS3Namespace).append("\">");
}

XmlWriter& XmlWriter::Open(std::string_view name) {
  out_.append("<").append(name).append(">");
  return *this;
}

XmlWriter& XmlWriter::Close(std::string_view name) {
  out_.append("</").append(name).append(">");
  return *this;
}

XmlWriter& XmlWriter::Leaf(std::string_view name, std::string_view text) {
  Open(name);
  out_.append(XmlEscape(text));
  return Close(name);
}

XmlWriter& XmlWriter::Leaf(std::string_view name, uint64_t value) {
  return Leaf(name, std::string_view(std::to_string(value)));
}

XmlWriter& XmlWriter::Leaf(std::string_view name, bool value) {
  return Leaf(name, std::string_view(value ? "true" : "false"));
}

std::string XmlWriter::Finish() {
  Close(root_);
  return std::move(out_);
}

// ---- parsers ----

Result<DeleteObjectsInput> ParseDeleteObjects(std::string_view body) {
  pugi::xml_document doc;
  auto root = ParseRoot(doc, body, "Delete");
  if (!root.ok()) return std::move(root).error();
  DeleteObjectsInput in;
  for (pugi::xml_node c = root->first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    if (LocalName(c) == "Quiet") {
      const std::string text = Text(c);
      std::string_view q = TrimWs(text);
      if (q != "true" && q != "false") return MalformedXml("Quiet must be true or false");
      in.quiet = q == "true";
    } else if (LocalName(c) == "Object") {
      pugi::xml_node key = Child(c, "Key");
      if (!key) return MalformedXml("every Object needs a Key");
      std::string k = Text(key);
      if (k.empty()) return MalformedXml("an object Key must not be empty");
      in.keys.push_back(std::move(k));
    }
  }
  if (in.keys.empty()) return MalformedXml("list at least one Object");
  if (in.keys.size() > 1000) return MalformedXml("at most 1000 objects can be deleted at once");
  return in;
}

Result<std::vector<store::CompletedPart>> ParseCompleteMultipartUpload(std::string_view body) {
  pugi::xml_document doc;
  auto root = ParseRoot(doc, body, "CompleteMultipartUpload");
  if (!root.ok()) return std::move(root).error();
  std::vector<store::CompletedPart> parts;
  for (pugi::xml_node c = root->first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element || LocalName(c) != "Part") continue;
    pugi::xml_node number = Child(c, "PartNumber");
    pugi::xml_node etag = Child(c, "ETag");
    if (!number || !etag) return MalformedXml("every Part needs a PartNumber and an ETag");
    const std::string number_text = Text(number);
    std::string_view digits = TrimWs(number_text);
    int n = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
      return MalformedXml("PartNumber must be an integer");
    }
    parts.push_back({n, std::string(TrimWs(Text(etag)))});
  }
  if (parts.empty()) return MalformedXml("list at least one Part");
  return parts;
}

Result<std::string> ParseCreateBucketConfiguration(std::string_view body) {
  if (TrimWs(body).empty()) return std::string();
  pugi::xml_document doc;
  auto root = ParseRoot(doc, body, "CreateBucketConfiguration");
  if (!root.ok()) return std::move(root).error();
  pugi::xml_node location = Child(*root, "LocationConstraint");
  return std::string(location ? TrimWs(Text(location)) : std::string_view());
}

}  // namespace inferd::api::s3
