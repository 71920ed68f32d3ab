package rocketmq

// Request codes (PROTOCOL.md §2; the same numbers in 4.9 and 5.x).
const (
	CodePullMessage                   = 11
	CodeQueryConsumerOffset           = 14
	CodeGetAllTopicConfig             = 21
	CodeGetBrokerConfig               = 26
	CodeGetBrokerRuntimeInfo          = 28
	CodeSearchOffsetByTimestamp       = 29
	CodeGetMaxOffset                  = 30
	CodeGetMinOffset                  = 31
	CodeGetEarliestMsgStoreTime       = 32
	CodeViewMessageByID               = 33
	CodeHeartBeat                     = 34
	CodeGetRouteInfoByTopic           = 105
	CodeGetBrokerClusterInfo          = 106
	CodeGetAllSubscriptionGroupConfig = 201
	CodeGetTopicStatsInfo             = 202
	CodeGetConsumerConnectionList     = 203
	CodeGetProducerConnectionList     = 204
	CodeGetAllTopicListFromNameServer = 206
	CodeGetConsumeStats               = 208
	CodeGetTopicsByCluster            = 224
	CodeQueryTopicConsumeByWho        = 300
	CodeQueryConsumeTimeSpan          = 303
	CodeGetConsumerRunningInfo        = 307
	CodeViewBrokerStatsData           = 315
	CodeGetBrokerConsumeStats         = 317
	CodeQueryConsumeQueue             = 321
	CodeGetBrokerHAStatus             = 907
	CodeControllerGetReplicaInfo      = 1004
	CodeControllerGetMetadataInfo     = 1005
	CodeControllerGetSyncStateData    = 1006

	// DLedger port (openmessaging/dledger DLedgerRequestCode).
	CodeDLedgerMetadata  = 50000
	CodeDLedgerHeartBeat = 51002
)

// Response codes (RemotingSysResponseCode and ResponseCode, PROTOCOL.md §1.5).
const (
	ResponseSuccess                 = 0
	ResponseSystemError             = 1
	ResponseSystemBusy              = 2
	ResponseRequestCodeNotSupported = 3
	ResponseTopicNotExist           = 17
	ResponseQueryNotFound           = 22
	ResponseSubscriptionGroupAbsent = 26
	ResponseConsumerNotOnline       = 206

	// DLedger answers use its own codes as the remoting code.
	DLedgerSuccess      = 200
	DLedgerExpiredTerm  = 403
	DLedgerUnknownGroup = 400
	DLedgerUnknownPeer  = 401

	ControllerNotLeader = 2007
)
